package org.neometer.core;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Accepted frames -> one number (neometer/measure/aggregate.py): the median, half the
 * interquartile range (numpy's default 'linear' percentiles), and when too few frames pass,
 * the most common failure (ties: the one seen first), else too_few_good_frames.
 */
public final class Aggregate {
    private Aggregate() {}

    /** predictions[i] = {height_cm, weight_kg} (weight may be NaN for a height-only model). */
    public static Measurement aggregate(double[][] predictions, List<FrameCheck> checks, QualityThresholds t) {
        if (predictions.length != checks.size()) {
            throw new NeometerException(predictions.length + " predictions but " + checks.size() + " frame checks");
        }
        int n = 0;
        for (FrameCheck c : checks) if (c.accepted()) n++;
        if (n < t.minGoodFrames) {
            return new Measurement(null, null, null, null, n, checks.size(), mostCommonFailure(checks));
        }
        double[] h = new double[n], w = new double[n];
        int k = 0;
        for (int i = 0; i < checks.size(); i++) {
            if (!checks.get(i).accepted()) continue;
            h[k] = predictions[i][0];
            w[k] = predictions[i].length > 1 ? predictions[i][1] : Double.NaN;
            k++;
        }
        return new Measurement(median(h), nanToNull(median(w)), halfIqr(h), nanToNull(halfIqr(w)), n, checks.size(), null);
    }

    static String mostCommonFailure(List<FrameCheck> checks) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (FrameCheck c : checks) for (String f : c.failures) counts.merge(f, 1, Integer::sum);
        String best = Gates.TOO_FEW_FRAMES;
        int bestCount = 0;
        for (Map.Entry<String, Integer> e : counts.entrySet()) {
            if (e.getValue() > bestCount) {  // strict: the first seen wins ties, as Counter.most_common
                best = e.getKey();
                bestCount = e.getValue();
            }
        }
        return best;
    }

    /** numpy.percentile(values, q) with the default 'linear' method. */
    public static double percentile(double[] values, double q) {
        double[] s = values.clone();
        Arrays.sort(s);
        double pos = (s.length - 1) * q / 100.0;
        int lo = (int) Math.floor(pos);
        int hi = Math.min(s.length - 1, lo + 1);
        double frac = pos - lo;
        return s[lo] + (s[hi] - s[lo]) * frac;
    }

    public static double median(double[] values) {
        double[] s = values.clone();
        Arrays.sort(s);
        int m = s.length / 2;
        return s.length % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2.0;
    }

    public static double halfIqr(double[] values) {
        return (percentile(values, 75) - percentile(values, 25)) / 2.0;
    }

    private static Double nanToNull(double v) {
        return Double.isNaN(v) ? null : v;
    }
}
