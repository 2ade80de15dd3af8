package org.neometer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SessionHistoryBenchTest {
    private static ModelCard card(String name) throws Exception {
        return ModelCard.read(ModelCardTest.fixtures().resolve(name));
    }

    /** A frame with a centred body and its mask, shaped like the golden landscape case. */
    private static RgbImage frame(int w, int h, float[] maskOut, double cx) {
        byte[] rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double dx = (x - cx) / (w * 0.18), dy = (y - h * 0.5) / (h * 0.3);
                boolean body = dx * dx + dy * dy <= 1;
                maskOut[y * w + x] = body ? 1f : 0f;
                rgb[(y * w + x) * 3] = (byte) (body ? 224 : 40);
                rgb[(y * w + x) * 3 + 1] = (byte) (body ? 178 : 90);
                rgb[(y * w + x) * 3 + 2] = (byte) (body ? 150 : 140);
            }
        }
        return new RgbImage(w, h, rgb);
    }

    @Test
    void sessionGatesFramesFeedsBackgroundRemovedInputAndTakesTheMedian() throws Exception {
        ModelCard card = card("regressor_fp32.tflite.json");
        int s = card.preprocessing.targetSize;
        float[] seenInput = new float[1];
        float[] heights = {49f, 50f, 51f, 52f, 80f, 50.5f};
        int[] call = {0};
        MeasureSession.Regressor reg = input -> {
            assertEquals(s * s * 3, input.length);
            seenInput[0] = input[0];  // NHWC corner pixel, red channel: background after removal
            float h = heights[call[0]++];
            return new float[] {h, h / 15f};
        };
        MeasureSession session = new MeasureSession(card, reg, null, null, null);
        int w = 320, h = 240;
        for (int i = 0; i < 6; i++) {
            float[] mask = new float[w * h];
            RgbImage f = frame(w, h, mask, w * 0.5);
            assertTrue(session.addFrame(f, mask, 3.0).accepted());
        }
        float[] mask = new float[w * h];
        FrameCheck tilted = session.addFrame(frame(w, h, mask, w * 0.5), mask, 40.0);
        assertEquals(List.of(Gates.TILTED), tilted.failures);
        float[] cutMask = new float[w * h];
        FrameCheck cut = session.addFrame(frame(w, h, cutMask, 10), cutMask, 0.0);
        assertEquals(List.of(Gates.OUT_OF_FRAME), cut.failures);
        assertEquals(6, call[0], "rejected frames are not predicted");
        assertEquals((0 - card.preprocessing.mean[0]) / card.preprocessing.std[0], seenInput[0], 1e-6f);
        Measurement m = session.finish();
        assertNull(m.message);
        assertEquals(6, m.framesUsed);
        assertEquals(8, m.framesSeen);
        assertEquals(50.75, m.heightCm, 1e-5);  // median of 49, 50, 50.5, 51, 52, 80
        assertEquals(Aggregate.halfIqr(new double[] {49, 50, 51, 52, 80, 50.5}), m.heightSpreadCm, 1e-5);
    }

    @Test
    void sessionUsesTheSegmenterWhenNoMaskIsGiven() throws Exception {
        ModelCard reg = card("regressor_fp32.pte.json");
        ModelCard seg = card("segmenter_fp16.tflite.json");
        int s = reg.preprocessing.targetSize;
        MeasureSession.Segmenter nothingFound = input -> new float[s * s];
        MeasureSession session = new MeasureSession(reg, in -> new float[] {50, 3}, seg, nothingFound, null);
        for (int i = 0; i < 6; i++) session.addFrame(new RgbImage(8, 6, new byte[8 * 6 * 3]), null, null);
        Measurement m = session.finish();
        assertEquals(Gates.NO_BODY, m.message);
        assertNull(m.heightCm);
    }

    @Test
    void historyAppendsAtomicallyAndKeepsEarlierEntries(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("history.json");
        History history = new History(file);
        assertTrue(history.entries().isEmpty());
        Measurement a = new Measurement(50.1, 3.2, 0.3, 0.05, 9, 12, null);
        Measurement b = new Measurement(null, null, null, null, 2, 12, Gates.TILTED);
        history.add(a, "2024-01-01T10:00:00Z", "regressor_fp32.tflite", "bed 3");
        history.add(b, "2024-01-01T10:05:00Z", "regressor_fp32.tflite", null);
        List<Map<String, Object>> all = new History(file).entries();
        assertEquals(2, all.size());
        assertEquals(50.1, Measurement.fromMap(Golden.obj(all.get(0).get("measurement"))).heightCm, 0);
        assertEquals(Gates.TILTED, Measurement.fromMap(Golden.obj(all.get(1).get("measurement"))).message);
        assertTrue(!Files.exists(dir.resolve("history.json.tmp")));
        Files.write(file, "{broken".getBytes(StandardCharsets.UTF_8));
        assertThrows(NeometerException.class, history::entries);
        assertThrows(NeometerException.class, () -> history.add(a, "t", "m", null));
        assertEquals("{broken", new String(Files.readAllBytes(file), StandardCharsets.UTF_8), "an unreadable history is never overwritten");
    }

    @Test
    void benchResultHasTheSharedSchemaShape() throws Exception {
        ModelCard card = card("regressor_fp32.pte.json");
        Map<String, Object> lat = BenchResult.latency(new double[] {4, 1, 3, 2, 10}, 3, 2, 12.5, null);
        assertEquals(3.0, lat.get("p50_ms"));
        assertEquals(7.6, (Double) lat.get("p90_ms"), 1e-9);  // sorted 1,2,3,4,10: position 3.6 -> 4 + 0.6 * 6
        assertEquals(1.0, lat.get("min_ms"));
        assertEquals(10.0, lat.get("max_ms"));
        assertEquals(5L, lat.get("runs"));
        Map<String, Object> doc = BenchResult.build("r1", "2024-01-01T00:00:00Z", card,
                Map.of("model", "Pixel 8", "os", "Android 14", "cores", 8L, "accelerator", "xnnpack"),
                "executorch", "1.5.1", lat, Arrays.asList("note"));
        Map<String, Object> back = Json.parseObject(Json.write(doc));
        assertEquals("android", Golden.obj(back.get("device")).get("kind"));
        assertEquals("executorch", Golden.obj(back.get("model")).get("format"));
        assertEquals(card.artifactSha256, Golden.obj(back.get("model")).get("sha256"));
        assertEquals(1L, back.get("schema_version"));
        assertThrows(NeometerException.class, () -> BenchResult.latency(new double[0], 0, 1, null, null));
    }
}
