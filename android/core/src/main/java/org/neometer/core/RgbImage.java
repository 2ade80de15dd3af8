package org.neometer.core;

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B (as numpy HxWx3 uint8). */
public final class RgbImage {
    public final int width;
    public final int height;
    public final byte[] rgb;

    public RgbImage(int width, int height, byte[] rgb) {
        if (width < 1 || height < 1 || rgb.length != width * height * 3) {
            throw new NeometerException("image of " + width + "x" + height + " needs " + (width * height * 3)
                    + " RGB bytes, got " + rgb.length);
        }
        this.width = width;
        this.height = height;
        this.rgb = rgb;
    }

    public int get(int x, int y, int c) {
        return rgb[(y * width + x) * 3 + c] & 0xff;
    }

    /**
     * Android Bitmap.getPixels / Java BufferedImage.getRGB order: 0xAARRGGBB, not premultiplied.
     * Alpha is composited onto the pad value (transparent = background, as a removed background
     * is), with Python's float32 arithmetic so the bytes match to the grey level.
     */
    public static RgbImage fromArgb(int[] argb, int width, int height, int padValue) {
        byte[] out = new byte[width * height * 3];
        float pad = padValue;
        for (int i = 0; i < width * height; i++) {
            int p = argb[i];
            int a = p >>> 24;
            for (int c = 0; c < 3; c++) {
                int v = (p >> (16 - 8 * c)) & 0xff;
                if (a != 255) {
                    float alpha = a / 255f;
                    float composited = v * alpha + pad * (1f - alpha);
                    v = roundByte(composited);
                }
                out[i * 3 + c] = (byte) v;
            }
        }
        return new RgbImage(width, height, out);
    }

    /** A grey image (one byte per pixel) with the grey value replicated into R, G and B. */
    public static RgbImage fromGray(byte[] gray, int width, int height) {
        byte[] out = new byte[width * height * 3];
        for (int i = 0; i < width * height; i++) {
            out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = gray[i];
        }
        return new RgbImage(width, height, out);
    }

    /** floor(v + 0.5) clipped to 0..255: the "round_half_up" rule of the model card. */
    static int roundByte(double v) {
        double r = Math.floor(v + 0.5);
        return r < 0 ? 0 : r > 255 ? 255 : (int) r;
    }
}
