package org.neometer.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The card's "quality" block (neometer.measure.gates.QualityThresholds); all fields required. */
public final class QualityThresholds {
    public final double minBodyFraction;
    public final double maxBorderFraction;
    public final int borderPx;
    public final double maxTiltDeg;
    public final double maxUncertainFraction;
    public final int minGoodFrames;

    public QualityThresholds(double minBodyFraction, double maxBorderFraction, int borderPx, double maxTiltDeg,
                             double maxUncertainFraction, int minGoodFrames) {
        this.minBodyFraction = minBodyFraction;
        this.maxBorderFraction = maxBorderFraction;
        this.borderPx = borderPx;
        this.maxTiltDeg = maxTiltDeg;
        this.maxUncertainFraction = maxUncertainFraction;
        this.minGoodFrames = minGoodFrames;
    }

    public static QualityThresholds fromMap(Map<String, Object> map) {
        List<String> problems = new ArrayList<>();
        QualityThresholds t = read(new Fields(map, "quality.", problems));
        if (!problems.isEmpty()) throw new NeometerException("quality block is invalid", problems);
        return t;
    }

    static QualityThresholds read(Fields f) {
        if (!f.present()) return null;
        return new QualityThresholds(f.number("min_body_fraction", 0, true), f.number("max_border_fraction", 0, true),
                f.integer("border_px", 0, true), f.number("max_tilt_deg", 0, true),
                f.number("max_uncertain_fraction", 0, true), f.integer("min_good_frames", 1, true));
    }

    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("min_body_fraction", minBodyFraction);
        m.put("max_border_fraction", maxBorderFraction);
        m.put("border_px", (long) borderPx);
        m.put("max_tilt_deg", maxTiltDeg);
        m.put("max_uncertain_fraction", maxUncertainFraction);
        m.put("min_good_frames", (long) minGoodFrames);
        return m;
    }
}
