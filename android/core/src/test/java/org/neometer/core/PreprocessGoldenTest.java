package org.neometer.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The Java preprocessing reproduces Python's golden tensors for every golden image. */
class PreprocessGoldenTest {
    static Stream<String> imageNames() throws IOException {
        List<String> names = new ArrayList<>();
        for (Object o : Golden.list(Golden.manifest().get("images"))) names.add((String) Golden.obj(o).get("name"));
        return names.stream();
    }

    private static Map<String, Object> entry(String name) throws IOException {
        for (Object o : Golden.list(Golden.manifest().get("images"))) {
            if (name.equals(Golden.obj(o).get("name"))) return Golden.obj(o);
        }
        throw new IllegalStateException("no golden image " + name);
    }

    private static RgbImage source(Map<String, Object> e) throws IOException {
        Map<String, Object> t = Golden.obj(e.get("source_rgb_u8"));
        int[] shape = Golden.shape(t);
        return new RgbImage(shape[1], shape[0], Golden.u8(t));
    }

    /** The source mask PNG is 8-bit grey: read raw raster samples (no colour conversion). */
    private static float[] sourceMask(Map<String, Object> e) throws IOException {
        if (e.get("mask") == null) return null;
        BufferedImage img = ImageIO.read(Golden.DIR.resolve((String) e.get("mask")).toFile());
        assertEquals(1, img.getRaster().getNumBands(), "mask PNGs are single-channel");
        int w = img.getWidth(), h = img.getHeight();
        byte[] b = new byte[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) b[y * w + x] = (byte) img.getRaster().getSample(x, y, 0);
        return Preprocess.maskFromBytes(b);
    }

    @ParameterizedTest
    @MethodSource("imageNames")
    void letterboxGeometryMatches(String name) throws IOException {
        Map<String, Object> e = entry(name);
        Map<String, Object> lb = Golden.obj(e.get("letterbox"));
        Letterbox geo = Letterbox.of(((Number) e.get("src_w")).intValue(), ((Number) e.get("src_h")).intValue(), Golden.spec().targetSize);
        assertEquals(((Number) lb.get("new_w")).intValue(), geo.newW);
        assertEquals(((Number) lb.get("new_h")).intValue(), geo.newH);
        assertEquals(((Number) lb.get("off_x")).intValue(), geo.offX);
        assertEquals(((Number) lb.get("off_y")).intValue(), geo.offY);
    }

    @ParameterizedTest
    @MethodSource("imageNames")
    void maskMatches(String name) throws IOException {
        Map<String, Object> e = entry(name);
        float[] mask = sourceMask(e);
        if (mask == null) return;
        RgbImage src = source(e);
        float[] expected = Golden.f32(Golden.obj(e.get("mask_letterboxed_f32")));
        float[] actual = Preprocess.letterboxMask(mask, src.width, src.height, Golden.spec());
        assertArrayEquals(expected, actual, 1e-5f, name + ": letterboxed mask");
    }

    @ParameterizedTest
    @MethodSource("imageNames")
    void letterboxedBytesWithinOneGreyLevel(String name) throws IOException {
        Map<String, Object> e = entry(name);
        PreprocessSpec spec = Golden.spec();
        byte[] expected = Golden.u8(Golden.obj(e.get("letterboxed_u8")));
        float[] mask = sourceMask(e);
        RgbImage actual = Preprocess.preprocessU8(source(e), mask, spec);
        // A mask value within float noise of the threshold may fall either side in either
        // language; such pixels are skipped (and must be rare).
        float[] goldenMask = e.get("mask_letterboxed_f32") == null ? null : Golden.f32(Golden.obj(e.get("mask_letterboxed_f32")));
        int worst = 0, offByOne = 0, borderline = 0;
        for (int i = 0; i < expected.length; i++) {
            if (goldenMask != null && Math.abs(goldenMask[i / 3] - spec.maskThreshold) < 1e-5f) { borderline++; continue; }
            int d = Math.abs((expected[i] & 0xff) - (actual.rgb[i] & 0xff));
            worst = Math.max(worst, d);
            if (d == 1) offByOne++;
        }
        assertTrue(worst <= 1, name + ": max difference " + worst + " grey levels");
        assertTrue(offByOne <= expected.length / 100, name + ": " + offByOne + " values off by one");
        assertTrue(borderline <= 3 * 224, name + ": " + borderline + " values at the mask threshold");
    }

    @ParameterizedTest
    @MethodSource("imageNames")
    void modelInputMatches(String name) throws IOException {
        Map<String, Object> e = entry(name);
        PreprocessSpec spec = Golden.spec();
        Map<String, Object> t = Golden.obj(e.get("input_nchw_f32"));
        assertArrayEquals(new int[] {1, 3, spec.targetSize, spec.targetSize}, Golden.shape(t));
        float[] expected = Golden.f32(t);
        // Normalising Python's own bytes must be exact: same float32 operations.
        int[] shape = Golden.shape(Golden.obj(e.get("letterboxed_u8")));
        RgbImage goldenBytes = new RgbImage(shape[1], shape[0], Golden.u8(Golden.obj(e.get("letterboxed_u8"))));
        assertArrayEquals(expected, Preprocess.normalize(goldenBytes, spec, "NCHW"), 0f, name + ": normalize");
        // The whole Java pipeline from source pixels: within one grey level.
        float minStd = Math.min(spec.std[0], Math.min(spec.std[1], spec.std[2]));
        float tol = 1f / 255f / minStd + 1e-4f;
        float[] actual = Preprocess.normalize(Preprocess.preprocessU8(source(e), sourceMask(e), spec), spec, "NCHW");
        float[] goldenMask = e.get("mask_letterboxed_f32") == null ? null : Golden.f32(Golden.obj(e.get("mask_letterboxed_f32")));
        int hw = spec.targetSize * spec.targetSize;
        for (int i = 0; i < expected.length; i++) {
            if (goldenMask != null && Math.abs(goldenMask[i % hw] - spec.maskThreshold) < 1e-5f) continue;
            if (Math.abs(expected[i] - actual[i]) > tol) {
                throw new AssertionError(name + ": input[" + i + "] = " + actual[i] + ", Python " + expected[i]);
            }
        }
    }

    @Test
    void nhwcIsTheTransposeOfNchw() throws IOException {
        Map<String, Object> e = entry("portrait");
        PreprocessSpec spec = Golden.spec();
        int[] shape = Golden.shape(Golden.obj(e.get("letterboxed_u8")));
        RgbImage u8 = new RgbImage(shape[1], shape[0], Golden.u8(Golden.obj(e.get("letterboxed_u8"))));
        float[] nchw = Preprocess.normalize(u8, spec, "NCHW"), nhwc = Preprocess.normalize(u8, spec, "NHWC");
        int hw = u8.width * u8.height;
        for (int i = 0; i < hw; i++) for (int c = 0; c < 3; c++) assertEquals(nchw[c * hw + i], nhwc[i * 3 + c]);
    }

    /** Android hands ARGB ints: the alpha composite must give Python's RGB bytes for the RGBA image. */
    @Test
    void argbAlphaCompositeMatchesPython() throws IOException {
        Map<String, Object> e = entry("rgba");
        assertEquals(4, ((Number) e.get("channels")).intValue());
        BufferedImage img = ImageIO.read(Golden.DIR.resolve((String) e.get("image")).toFile());
        assertTrue(img.getColorModel().hasAlpha());
        int w = img.getWidth(), h = img.getHeight();
        int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
        RgbImage actual = RgbImage.fromArgb(argb, w, h, Golden.spec().padValue);
        byte[] expected = Golden.u8(Golden.obj(e.get("source_rgb_u8")));
        assertArrayEquals(expected, actual.rgb);
        boolean anyTranslucent = false;
        for (int p : argb) anyTranslucent |= (p >>> 24) != 255;
        assertTrue(anyTranslucent, "the golden RGBA image has translucent pixels");
    }

    @Test
    void grayIsReplicated() throws IOException {
        Map<String, Object> e = entry("grayscale");
        assertEquals(1, ((Number) e.get("channels")).intValue());
        RgbImage src = source(e);
        byte[] gray = new byte[src.width * src.height];
        for (int i = 0; i < gray.length; i++) gray[i] = src.rgb[i * 3];
        assertArrayEquals(src.rgb, RgbImage.fromGray(gray, src.width, src.height).rgb);
    }

    @Test
    void bgrSwapsChannelsAndPaddingIsPadValue() throws IOException {
        PreprocessSpec rgb = Golden.spec();
        PreprocessSpec bgr = new PreprocessSpec(rgb.targetSize, rgb.resizeRule, rgb.resize, rgb.placement, 7, rgb.rounding,
                "BGR", rgb.scale, rgb.mean, rgb.std, rgb.backgroundRemoval, rgb.maskThreshold);
        RgbImage src = new RgbImage(4, 2, new byte[] {10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30});
        RgbImage boxed = Preprocess.letterbox(src, bgr);
        assertEquals(7, boxed.get(0, 0, 0), "padding row uses pad_value");
        assertEquals(10, boxed.get(100, 112, 0), "content keeps RGB bytes");
        float[] x = Preprocess.normalize(boxed, bgr, "NCHW");
        int hw = bgr.targetSize * bgr.targetSize, i = 112 * bgr.targetSize + 100;
        assertEquals((30 * bgr.scale - bgr.mean[0]) / bgr.std[0], x[i], 1e-6f, "tensor channel 0 is blue");
        assertFalse(x[i] == x[2 * hw + i]);
    }
}
