package org.neometer.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The model card's "preprocessing" block (neometer.data.preprocess.PreprocessSpec). Every value
 * comes from the card at run time; this class holds no defaults of its own.
 */
public final class PreprocessSpec {
    public final int targetSize;
    public final String resizeRule;
    public final String resize;
    public final String placement;
    public final int padValue;
    public final String rounding;
    public final String channelOrder;
    public final float scale;
    public final float[] mean;
    public final float[] std;
    public final String backgroundRemoval;
    public final float maskThreshold;

    public PreprocessSpec(int targetSize, String resizeRule, String resize, String placement, int padValue,
                          String rounding, String channelOrder, float scale, float[] mean, float[] std,
                          String backgroundRemoval, float maskThreshold) {
        this.targetSize = targetSize;
        this.resizeRule = resizeRule;
        this.resize = resize;
        this.placement = placement;
        this.padValue = padValue;
        this.rounding = rounding;
        this.channelOrder = channelOrder;
        this.scale = scale;
        this.mean = mean;
        this.std = std;
        this.backgroundRemoval = backgroundRemoval;
        this.maskThreshold = maskThreshold;
    }

    /** From a parsed "preprocessing" object; throws listing every missing or unsupported field. */
    public static PreprocessSpec fromMap(Map<String, Object> map) {
        List<String> problems = new ArrayList<>();
        PreprocessSpec spec = read(new Fields(map, "preprocessing.", problems));
        if (!problems.isEmpty()) throw new NeometerException("preprocessing block is invalid", problems);
        return spec;
    }

    static PreprocessSpec read(Fields f) {
        if (!f.present()) return null;  // the caller already reported the missing block
        int target = f.integer("target_size", 0, true);
        String resizeRule = f.string("resize_rule", "", true);
        String resize = f.string("resize", "", true);
        String placement = f.string("placement", "", true);
        String rounding = f.string("rounding", "", true);
        String order = f.string("channel_order", "RGB", true);
        String bg = f.string("background_removal", "none", true);
        // The shells implement exactly one rule of each kind; anything else must fail loudly.
        if (f.has("resize_rule")) f.oneOf("resize_rule", resizeRule, "long_side");
        if (f.has("resize")) f.oneOf("resize", resize, "area");
        if (f.has("placement")) f.oneOf("placement", placement, "center");
        if (f.has("rounding")) f.oneOf("rounding", rounding, "round_half_up");
        if (f.has("channel_order")) f.oneOf("channel_order", order, "RGB", "BGR");
        if (f.has("background_removal")) f.oneOf("background_removal", bg, "mask", "none");
        int pad = f.integer("pad_value", 0, true);
        if (pad < 0 || pad > 255) f.problems().add(f.path() + "pad_value: " + pad + " is outside 0..255");
        if (f.has("target_size") && target < 16) f.problems().add(f.path() + "target_size: " + target + " is below 16");
        double[] mean = f.numbers("mean", 3, true);
        double[] std = f.numbers("std", 3, true);
        if (std != null) {
            for (double s : std) {
                if (s <= 0) f.problems().add(f.path() + "std: every value must be positive, got " + s);
            }
        }
        return new PreprocessSpec(target, resizeRule, resize, placement, pad, rounding, order,
                (float) f.number("scale", 0, true), toFloats(mean), toFloats(std), bg,
                (float) f.number("mask_threshold", 0.5, true));
    }

    static float[] toFloats(double[] d) {
        if (d == null) return new float[] {0f, 0f, 1f};
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) out[i] = (float) d[i];
        return out;
    }

    public boolean removesBackground() {
        return "mask".equals(backgroundRemoval);
    }
}
