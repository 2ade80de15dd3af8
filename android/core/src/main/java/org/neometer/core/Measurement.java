package org.neometer.core;

import java.util.LinkedHashMap;
import java.util.Map;

/** What the nurse reads: medians, half-IQR spreads, frames used; or the message to fix first. */
public final class Measurement {
    public final Double heightCm;
    public final Double weightKg;
    public final Double heightSpreadCm;
    public final Double weightSpreadKg;
    public final int framesUsed;
    public final int framesSeen;
    public final String message;

    public Measurement(Double heightCm, Double weightKg, Double heightSpreadCm, Double weightSpreadKg,
                       int framesUsed, int framesSeen, String message) {
        this.heightCm = heightCm;
        this.weightKg = weightKg;
        this.heightSpreadCm = heightSpreadCm;
        this.weightSpreadKg = weightSpreadKg;
        this.framesUsed = framesUsed;
        this.framesSeen = framesSeen;
        this.message = message;
    }

    /** The same keys as Python's Measurement.to_dict(). */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("height_cm", heightCm);
        m.put("weight_kg", weightKg);
        m.put("height_spread_cm", heightSpreadCm);
        m.put("weight_spread_kg", weightSpreadKg);
        m.put("frames_used", (long) framesUsed);
        m.put("frames_seen", (long) framesSeen);
        m.put("message", message);
        return m;
    }

    public static Measurement fromMap(Map<String, Object> m) {
        return new Measurement(num(m.get("height_cm")), num(m.get("weight_kg")), num(m.get("height_spread_cm")),
                num(m.get("weight_spread_kg")), ((Number) m.get("frames_used")).intValue(),
                ((Number) m.get("frames_seen")).intValue(), (String) m.get("message"));
    }

    private static Double num(Object o) {
        return o == null ? null : ((Number) o).doubleValue();
    }
}
