package org.neometer.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Per-frame quality gates (neometer/measure/gates.py): from the letterboxed body mask and the
 * phone's tilt. The keys are the message keys every shell translates.
 */
public final class Gates {
    public static final String NO_BODY = "no_body";
    public static final String OUT_OF_FRAME = "body_out_of_frame";
    public static final String TILTED = "camera_tilted";
    public static final String MASK_UNCERTAIN = "mask_uncertain";
    public static final String TOO_FEW_FRAMES = "too_few_good_frames";

    /** Every key, in the order a nurse should fix them. */
    public static final String[] ALL_KEYS = {NO_BODY, OUT_OF_FRAME, TILTED, MASK_UNCERTAIN, TOO_FEW_FRAMES};

    private Gates() {}

    /**
     * mask: size x size probabilities (null: no segmenter, no mask gates); box: x0, y0, x1, y1
     * (exclusive) of the image content inside the square (null: the whole square); tiltDeg: null
     * when the phone reports no orientation.
     */
    public static FrameCheck checkFrame(float[] mask, int size, int[] box, Double tiltDeg, QualityThresholds t) {
        List<String> failures = new ArrayList<>();
        double body = 0, border = 0, uncertain = 0;
        if (mask != null) {
            int x0 = box == null ? 0 : box[0], y0 = box == null ? 0 : box[1];
            int x1 = box == null ? size : box[2], y1 = box == null ? size : box[3];
            int w = x1 - x0, h = y1 - y0, b = t.borderPx;
            long nFg = 0, nRing = 0, nSoft = 0, nSoftUncertain = 0;
            for (int y = y0; y < y1; y++) {
                for (int x = x0; x < x1; x++) {
                    float m = mask[y * size + x];
                    boolean fg = m >= 0.5f;
                    if (fg) {
                        nFg++;
                        if (inRing(x - x0, y - y0, w, h, b)) nRing++;
                    }
                    if (m >= 0.1f) {
                        nSoft++;
                        if (m < 0.9f) nSoftUncertain++;
                    }
                }
            }
            body = nFg / (double) Math.max(1, w * h);
            border = nRing / (double) Math.max(1, nFg);
            uncertain = nSoftUncertain / (double) Math.max(1, nSoft);
            if (body < t.minBodyFraction) {
                failures.add(NO_BODY);
            } else {
                if (border > t.maxBorderFraction) failures.add(OUT_OF_FRAME);
                if (uncertain > t.maxUncertainFraction) failures.add(MASK_UNCERTAIN);
            }
        }
        if (tiltDeg != null && Math.abs(tiltDeg) > t.maxTiltDeg) failures.add(TILTED);
        return new FrameCheck(body, border, uncertain, tiltDeg, failures);
    }

    /**
     * The content's outer ring of b pixels. Python builds it as ones with [b:-b, b:-b] cleared,
     * so b == 0 (an empty slice) leaves the whole content as ring; mirrored here for parity.
     */
    static boolean inRing(int x, int y, int w, int h, int b) {
        if (b <= 0) return true;
        boolean innerX = x >= b && x < w - b, innerY = y >= b && y < h - b;
        return !(innerX && innerY);
    }

    /**
     * Phone orientation -> angle between the camera axis and straight down, in degrees.
     * beta: front-back tilt, gamma: left-right tilt (DeviceOrientation convention; on Android
     * these are the pitch and roll of SensorManager.getOrientation, in degrees).
     */
    public static double tiltFromOrientation(double betaDeg, double gammaDeg) {
        double c = Math.cos(Math.toRadians(betaDeg)) * Math.cos(Math.toRadians(gammaDeg));
        return Math.toDegrees(Math.acos(Math.max(-1.0, Math.min(1.0, c))));
    }
}
