package org.neometer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Gates and aggregation give Python's results on the golden cases (floats to 1e-6, keys exactly). */
class GatesAggregateGoldenTest {
    @Test
    void everyGateCaseMatchesPython() throws IOException {
        QualityThresholds t = Golden.quality();
        List<Object> cases = Golden.list(Golden.manifest().get("gates"));
        assertTrue(cases.size() >= 5);
        for (Object o : cases) {
            Map<String, Object> c = Golden.obj(o);
            String name = (String) c.get("name");
            Map<String, Object> maskT = Golden.obj(c.get("mask"));
            int size = Golden.shape(maskT)[0];
            List<Object> b = Golden.list(c.get("box"));
            int[] box = new int[4];
            for (int i = 0; i < 4; i++) box[i] = ((Number) b.get(i)).intValue();
            Double tilt = c.get("tilt_deg") == null ? null : ((Number) c.get("tilt_deg")).doubleValue();
            FrameCheck check = Gates.checkFrame(Golden.f32(maskT), size, box, tilt, t);
            Map<String, Object> exp = Golden.obj(c.get("expected"));
            assertEquals(((Number) exp.get("body_fraction")).doubleValue(), check.bodyFraction, 1e-6, name);
            assertEquals(((Number) exp.get("border_fraction")).doubleValue(), check.borderFraction, 1e-6, name);
            assertEquals(((Number) exp.get("uncertain_fraction")).doubleValue(), check.uncertainFraction, 1e-6, name);
            assertEquals(Golden.list(exp.get("failures")), check.failures, name);
        }
    }

    @Test
    void goldenGateCasesCoverEveryFrameFailure() throws IOException {
        List<String> seen = new ArrayList<>();
        for (Object o : Golden.list(Golden.manifest().get("gates"))) {
            for (Object f : Golden.list(Golden.obj(Golden.obj(o).get("expected")).get("failures"))) seen.add((String) f);
        }
        for (String key : Arrays.asList(Gates.NO_BODY, Gates.OUT_OF_FRAME, Gates.TILTED, Gates.MASK_UNCERTAIN)) {
            assertTrue(seen.contains(key), "no golden gate case fails with " + key);
        }
    }

    @Test
    void everyAggregationCaseMatchesPython() throws IOException {
        QualityThresholds t = Golden.quality();
        for (Object o : Golden.list(Golden.manifest().get("aggregation"))) {
            Map<String, Object> c = Golden.obj(o);
            String name = (String) c.get("name");
            List<Object> preds = Golden.list(c.get("predictions"));
            List<Object> fails = Golden.list(c.get("failures"));
            double[][] p = new double[preds.size()][];
            List<FrameCheck> checks = new ArrayList<>();
            for (int i = 0; i < p.length; i++) {
                List<Object> row = Golden.list(preds.get(i));
                p[i] = new double[] {((Number) row.get(0)).doubleValue(), ((Number) row.get(1)).doubleValue()};
                List<String> f = new ArrayList<>();
                for (Object k : Golden.list(fails.get(i))) f.add((String) k);
                checks.add(new FrameCheck(0.2, 0, 0, null, f));
            }
            Measurement expected = Measurement.fromMap(Golden.obj(c.get("expected")));
            Measurement actual = Aggregate.aggregate(p, checks, t);
            assertEquals(expected.framesUsed, actual.framesUsed, name);
            assertEquals(expected.framesSeen, actual.framesSeen, name);
            assertEquals(expected.message, actual.message, name);
            assertClose(expected.heightCm, actual.heightCm, name + " height");
            assertClose(expected.weightKg, actual.weightKg, name + " weight");
            assertClose(expected.heightSpreadCm, actual.heightSpreadCm, name + " height spread");
            assertClose(expected.weightSpreadKg, actual.weightSpreadKg, name + " weight spread");
        }
    }

    private static void assertClose(Double expected, Double actual, String what) {
        if (expected == null) {
            assertNull(actual, what);
        } else {
            assertEquals(expected, actual, 1e-6, what);
        }
    }

    @Test
    void percentilesAreNumpyLinear() {
        // numpy.percentile([1, 2, 3, 4], [25, 75]) == [1.75, 3.25]; median of an even count averages.
        double[] v = {4, 1, 3, 2};
        assertEquals(1.75, Aggregate.percentile(v, 25), 1e-12);
        assertEquals(3.25, Aggregate.percentile(v, 75), 1e-12);
        assertEquals(2.5, Aggregate.median(v), 1e-12);
        assertEquals(0.75, Aggregate.halfIqr(v), 1e-12);
        assertEquals(7.0, Aggregate.percentile(new double[] {7}, 90), 0);
    }

    @Test
    void tiesGoToTheFailureSeenFirstAndNoFailuresMeansTooFewFrames() {
        QualityThresholds t = new QualityThresholds(0.03, 0.02, 2, 25, 0.35, 3);
        List<FrameCheck> checks = Arrays.asList(
                new FrameCheck(0, 0, 0, null, Arrays.asList(Gates.TILTED)),
                new FrameCheck(0, 0, 0, null, Arrays.asList(Gates.NO_BODY)),
                new FrameCheck(0, 0, 0, null, Arrays.asList(Gates.NO_BODY, Gates.TILTED)));
        assertEquals(Gates.TILTED, Aggregate.aggregate(new double[3][2], checks, t).message);
        List<FrameCheck> ok = Arrays.asList(new FrameCheck(0.2, 0, 0, null, new ArrayList<>()));
        Measurement m = Aggregate.aggregate(new double[][] {{50, 3}}, ok, t);
        assertEquals(Gates.TOO_FEW_FRAMES, m.message);
        assertNull(m.heightCm);
        assertThrows(NeometerException.class, () -> Aggregate.aggregate(new double[2][2], ok, t));
    }

    @Test
    void heightOnlyModelsGiveNoWeight() {
        QualityThresholds t = new QualityThresholds(0.03, 0.02, 2, 25, 0.35, 2);
        List<FrameCheck> ok = Arrays.asList(new FrameCheck(0.2, 0, 0, null, new ArrayList<>()), new FrameCheck(0.2, 0, 0, null, new ArrayList<>()));
        Measurement m = Aggregate.aggregate(new double[][] {{50, Double.NaN}, {52, Double.NaN}}, ok, t);
        assertEquals(51.0, m.heightCm, 1e-12);
        assertNull(m.weightKg);
        assertNull(m.weightSpreadKg);
    }

    @Test
    void tiltFromOrientation() {
        assertEquals(0.0, Gates.tiltFromOrientation(0, 0), 1e-9);
        assertEquals(30.0, Gates.tiltFromOrientation(30, 0), 1e-9);
        assertEquals(30.0, Gates.tiltFromOrientation(0, -30), 1e-9);
        // cos(t) = cos(20) cos(20) -> about 27.9 degrees: two small tilts add up past the gate.
        assertEquals(Math.toDegrees(Math.acos(Math.cos(Math.toRadians(20)) * Math.cos(Math.toRadians(20)))),
                Gates.tiltFromOrientation(20, 20), 1e-9);
    }

    @Test
    void borderRingOfZeroWidthIsTheWholeContentAsInPython() {
        assertTrue(Gates.inRing(5, 5, 20, 20, 0));
        assertTrue(Gates.inRing(1, 10, 20, 20, 2));
        assertTrue(Gates.inRing(10, 18, 20, 20, 2));
        assertTrue(!Gates.inRing(10, 10, 20, 20, 2));
    }
}
