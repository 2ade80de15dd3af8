package org.neometer.core;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A command line for checks off the phone: `check-card CARD...` parses model cards (exit 2
 * listing every problem); `bench-json CARD MS...` prints the result JSON the benchmark activity
 * would write for those timings, so the host can validate it against the shared schema.
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        System.exit(run(args));
    }

    static int run(String[] args) throws Exception {
        if (args.length >= 2 && args[0].equals("check-card")) {
            int bad = 0;
            for (int i = 1; i < args.length; i++) {
                try {
                    ModelCard c = ModelCard.read(Paths.get(args[i]));
                    System.out.println(args[i] + ": ok (" + c.role + ", " + c.format + " " + c.precision + ", " + c.inputLayout + ")");
                } catch (NeometerException e) {
                    System.err.println(e.getMessage());
                    bad++;
                }
            }
            return bad == 0 ? 0 : 2;
        }
        if (args.length >= 3 && args[0].equals("bench-json")) {
            Path cardPath = Paths.get(args[1]);
            ModelCard card = ModelCard.read(cardPath);
            double[] ms = new double[args.length - 2];
            for (int i = 2; i < args.length; i++) ms[i - 2] = Double.parseDouble(args[i]);
            Map<String, Object> device = new LinkedHashMap<>();
            device.put("model", System.getProperty("os.arch"));
            device.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
            device.put("cores", (long) Runtime.getRuntime().availableProcessors());
            device.put("accelerator", null);
            Map<String, Object> doc = BenchResult.build("cli", java.time.Instant.now().toString(), card, device,
                    "none", null, BenchResult.latency(ms, 0, 1, null, null), new ArrayList<>());
            System.out.print(Json.write(doc));
            return 0;
        }
        System.err.println("usage: Main check-card CARD.json... | Main bench-json CARD.json MS...");
        return 2;
    }
}
