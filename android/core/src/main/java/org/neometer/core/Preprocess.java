package org.neometer.core;

/**
 * neometer/data/preprocess.py in plain Java: area resize (separable coverage-weighted box
 * filter, x pass then y pass, each rounded to bytes), centred letterbox with the pad value,
 * the letterboxed mask with the same weights, background removal, normalisation into the
 * model's layout. Every parameter comes from the model card's PreprocessSpec.
 */
public final class Preprocess {
    private Preprocess() {}

    /** Sparse area weights: output pixel i covers source pixels first[i] .. first[i]+w[i].length-1. */
    static final class AreaWeights {
        final int[] first;
        final double[][] w;

        AreaWeights(int[] first, double[][] w) {
            this.first = first;
            this.w = w;
        }
    }

    /**
     * Row i: overlap of [i*src/dst, (i+1)*src/dst) with each source pixel, normalised to sum 1,
     * in double precision as Python's area_weights / area_resize_axis.
     */
    static AreaWeights areaWeights(int src, int dst) {
        double ratio = (double) src / dst;
        int[] first = new int[dst];
        double[][] w = new double[dst][];
        for (int i = 0; i < dst; i++) {
            double lo = i * ratio, hi = (i + 1) * ratio;
            int p0 = Math.max(0, (int) Math.floor(lo));
            int p1 = Math.min(src - 1, (int) Math.ceil(hi) - 1);
            double[] overlap = new double[p1 - p0 + 1];
            double sum = 0;
            for (int p = p0; p <= p1; p++) {
                double o = Math.max(0.0, Math.min(hi, p + 1.0) - Math.max(lo, p));
                overlap[p - p0] = o;
                sum += o;
            }
            first[i] = p0;
            w[i] = new double[overlap.length];
            for (int k = 0; k < overlap.length; k++) w[i][k] = overlap[k] / sum;
        }
        return new AreaWeights(first, w);
    }

    /** Separable area resize of RGB bytes: x pass, round half up, y pass, round half up. */
    public static RgbImage resizeArea(RgbImage img, int newW, int newH) {
        if (img.width == newW && img.height == newH) return new RgbImage(newW, newH, img.rgb.clone());
        AreaWeights wx = areaWeights(img.width, newW);
        AreaWeights wy = areaWeights(img.height, newH);
        byte[] mid = new byte[img.height * newW * 3];
        for (int y = 0; y < img.height; y++) {
            for (int x = 0; x < newW; x++) {
                for (int c = 0; c < 3; c++) {
                    double acc = 0;
                    double[] w = wx.w[x];
                    for (int k = 0; k < w.length; k++) acc += w[k] * img.get(wx.first[x] + k, y, c);
                    mid[(y * newW + x) * 3 + c] = (byte) RgbImage.roundByte(acc);
                }
            }
        }
        byte[] out = new byte[newH * newW * 3];
        for (int y = 0; y < newH; y++) {
            double[] w = wy.w[y];
            for (int x = 0; x < newW; x++) {
                for (int c = 0; c < 3; c++) {
                    double acc = 0;
                    for (int k = 0; k < w.length; k++) acc += w[k] * (mid[((wy.first[y] + k) * newW + x) * 3 + c] & 0xff);
                    out[(y * newW + x) * 3 + c] = (byte) RgbImage.roundByte(acc);
                }
            }
        }
        return new RgbImage(newW, newH, out);
    }

    /** Source RGB -> target x target RGB, long side scaled, short side padded with pad_value. */
    public static RgbImage letterbox(RgbImage img, PreprocessSpec spec) {
        Letterbox geo = Letterbox.of(img.width, img.height, spec.targetSize);
        int s = spec.targetSize;
        byte[] out = new byte[s * s * 3];
        java.util.Arrays.fill(out, (byte) spec.padValue);
        RgbImage resized = resizeArea(img, geo.newW, geo.newH);
        for (int y = 0; y < geo.newH; y++) {
            System.arraycopy(resized.rgb, y * geo.newW * 3, out, ((y + geo.offY) * s + geo.offX) * 3, geo.newW * 3);
        }
        return new RgbImage(s, s, out);
    }

    /**
     * A source-resolution mask (values in [0, 1], row-major) -> target x target coverage in [0, 1],
     * with the same area weights and no rounding; padding is background (0).
     */
    public static float[] letterboxMask(float[] mask, int width, int height, PreprocessSpec spec) {
        Letterbox geo = Letterbox.of(width, height, spec.targetSize);
        AreaWeights wx = areaWeights(width, geo.newW);
        AreaWeights wy = areaWeights(height, geo.newH);
        double[] mid = new double[height * geo.newW];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < geo.newW; x++) {
                double acc = 0;
                double[] w = wx.w[x];
                for (int k = 0; k < w.length; k++) acc += w[k] * mask[y * width + wx.first[x] + k];
                mid[y * geo.newW + x] = acc;
            }
        }
        int s = spec.targetSize;
        float[] out = new float[s * s];
        for (int y = 0; y < geo.newH; y++) {
            double[] w = wy.w[y];
            for (int x = 0; x < geo.newW; x++) {
                double acc = 0;
                for (int k = 0; k < w.length; k++) acc += w[k] * mid[(wy.first[y] + k) * geo.newW + x];
                out[(y + geo.offY) * s + x + geo.offX] = (float) acc;
            }
        }
        return out;
    }

    /** 8-bit mask bytes (0..255) -> [0, 1], as read_mask does (value / 255). */
    public static float[] maskFromBytes(byte[] mask) {
        float[] out = new float[mask.length];
        for (int i = 0; i < mask.length; i++) out[i] = (mask[i] & 0xff) / 255f;
        return out;
    }

    /** Background removal: pixels whose letterboxed mask value is below the threshold become pad_value. */
    public static RgbImage applyMask(RgbImage letterboxed, float[] mask224, PreprocessSpec spec) {
        byte[] out = letterboxed.rgb.clone();
        for (int i = 0; i < mask224.length; i++) {
            if (mask224[i] < spec.maskThreshold) {
                out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = (byte) spec.padValue;
            }
        }
        return new RgbImage(letterboxed.width, letterboxed.height, out);
    }

    /** Source image (+ optional source-resolution mask) -> letterboxed, background removed bytes. */
    public static RgbImage preprocessU8(RgbImage img, float[] mask, PreprocessSpec spec) {
        RgbImage out = letterbox(img, spec);
        if (mask != null && spec.removesBackground()) {
            out = applyMask(out, letterboxMask(mask, img.width, img.height, spec), spec);
        }
        return out;
    }

    /**
     * Letterboxed bytes -> the model's float input, (x * scale - mean) / std in float32 as
     * Python computes it, in the card's layout ("NCHW" or "NHWC") and channel order ("RGB",
     * or "BGR": tensor channel 0 is blue; mean and std are listed in the tensor's order).
     */
    public static float[] normalize(RgbImage u8, PreprocessSpec spec, String layout) {
        boolean nchw = "NCHW".equals(layout);
        if (!nchw && !"NHWC".equals(layout)) throw new NeometerException("unsupported input layout '" + layout + "': expected NCHW or NHWC");
        boolean bgr = "BGR".equals(spec.channelOrder);
        int hw = u8.width * u8.height;
        float[] out = new float[hw * 3];
        for (int i = 0; i < hw; i++) {
            for (int c = 0; c < 3; c++) {
                int src = bgr ? 2 - c : c;
                float x = (u8.rgb[i * 3 + src] & 0xff) * spec.scale;
                float v = (x - spec.mean[c]) / spec.std[c];
                out[nchw ? c * hw + i : i * 3 + c] = v;
            }
        }
        return out;
    }

    /** Float values -> integer tensor values, q = round(x / scale) + zero_point, clamped to the dtype. */
    public static int[] quantize(float[] x, double scale, int zeroPoint, String dtype) {
        int lo = "int8".equals(dtype) ? -128 : 0, hi = "int8".equals(dtype) ? 127 : 255;
        int[] out = new int[x.length];
        for (int i = 0; i < x.length; i++) {
            long q = Math.round(x[i] / scale) + zeroPoint;
            out[i] = (int) Math.max(lo, Math.min(hi, q));
        }
        return out;
    }

    /** Integer tensor values -> floats, (q - zero_point) * scale. */
    public static float[] dequantize(int[] q, double scale, int zeroPoint) {
        float[] out = new float[q.length];
        for (int i = 0; i < q.length; i++) out[i] = (float) ((q[i] - zeroPoint) * scale);
        return out;
    }
}
