package org.neometer.core;

import java.util.Collections;
import java.util.List;

/** One frame's gate result: the fractions measured and the failure keys (empty = accepted). */
public final class FrameCheck {
    public final double bodyFraction;
    public final double borderFraction;
    public final double uncertainFraction;
    public final Double tiltDeg;
    public final List<String> failures;

    public FrameCheck(double bodyFraction, double borderFraction, double uncertainFraction, Double tiltDeg,
                      List<String> failures) {
        this.bodyFraction = bodyFraction;
        this.borderFraction = borderFraction;
        this.uncertainFraction = uncertainFraction;
        this.tiltDeg = tiltDeg;
        this.failures = Collections.unmodifiableList(failures);
    }

    public boolean accepted() {
        return failures.isEmpty();
    }
}
