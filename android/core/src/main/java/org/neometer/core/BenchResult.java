package org.neometer.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The shared benchmark result (schemas/bench_result.schema.json), as the Android benchmark
 * activity writes it to files/bench/result.json. Latency statistics use numpy's 'linear'
 * percentiles, as the host benchmark does.
 */
public final class BenchResult {
    private BenchResult() {}

    public static Map<String, Object> latency(double[] runMs, int warmup, int threads, Double loadMs, Double peakMemoryMb) {
        if (runMs.length < 1) throw new NeometerException("a benchmark needs at least one timed run");
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("warmup", (long) warmup);
        m.put("runs", (long) runMs.length);
        m.put("threads", (long) threads);
        m.put("load_ms", loadMs);
        m.put("p50_ms", Aggregate.percentile(runMs, 50));
        m.put("p90_ms", Aggregate.percentile(runMs, 90));
        m.put("min_ms", Arrays.stream(runMs).min().getAsDouble());
        m.put("max_ms", Arrays.stream(runMs).max().getAsDouble());
        m.put("mean_ms", Arrays.stream(runMs).average().getAsDouble());
        m.put("end_to_end_p50_ms", null);
        m.put("peak_memory_mb", peakMemoryMb);
        return m;
    }

    /**
     * The whole document. device: model, os, cpu, cores, accelerator (what actually ran, e.g.
     * "xnnpack" or "gpu"); runtime: e.g. "litert" / "executorch" and its version.
     */
    public static Map<String, Object> build(String runId, String isoDate, ModelCard card, Map<String, Object> device,
                                            String runtime, String runtimeVersion, Map<String, Object> latency,
                                            List<String> notes) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("schema_version", 1L);
        Map<String, Object> run = new LinkedHashMap<>();
        run.put("id", runId);
        run.put("date", isoDate);
        run.put("git_commit", null);
        run.put("git_dirty", null);
        doc.put("run", run);
        Map<String, Object> dev = new LinkedHashMap<>();
        dev.put("kind", "android");
        dev.putAll(device);
        doc.put("device", dev);
        Map<String, Object> sw = new LinkedHashMap<>();
        sw.put("runtime", runtime);
        sw.put("runtime_version", runtimeVersion);
        sw.put("converter", card.converter);
        sw.put("converter_version", card.converterVersion);
        doc.put("software", sw);
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("artifact", card.artifactFile);
        model.put("sha256", card.artifactSha256);
        model.put("format", card.format);
        model.put("precision", card.precision);
        model.put("size_bytes", card.artifactSizeBytes);
        doc.put("model", model);
        doc.put("latency", latency);
        doc.put("parity", null);
        doc.put("status", "measured");
        doc.put("notes", notes == null ? new ArrayList<>() : notes);
        return doc;
    }
}
