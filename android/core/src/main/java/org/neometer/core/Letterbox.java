package org.neometer.core;

/** Where the source image landed inside the square (neometer.data.preprocess.Letterbox). */
public final class Letterbox {
    public final int srcW, srcH, newW, newH, offX, offY, size;

    private Letterbox(int srcW, int srcH, int newW, int newH, int offX, int offY, int size) {
        this.srcW = srcW;
        this.srcH = srcH;
        this.newW = newW;
        this.newH = newH;
        this.offX = offX;
        this.offY = offY;
        this.size = size;
    }

    /** Long side scaled to size, aspect ratio kept, content centred ((size - new) // 2). */
    public static Letterbox of(int srcW, int srcH, int size) {
        double scale = size / (double) Math.max(srcW, srcH);
        int newW = Math.max(1, Math.min(size, (int) Math.floor(srcW * scale + 0.5)));
        int newH = Math.max(1, Math.min(size, (int) Math.floor(srcH * scale + 0.5)));
        return new Letterbox(srcW, srcH, newW, newH, (size - newW) / 2, (size - newH) / 2, size);
    }

    /** x0, y0, x1, y1 (exclusive) of the image inside the padded square. */
    public int[] contentBox() {
        return new int[] {offX, offY, offX + newW, offY + newH};
    }
}
