// THE preprocessing, mirrored from neometer/data/preprocess.py. Every number (target size,
// pad value, mean, std, scale, mask threshold) comes from the model card's `preprocessing`
// block at run time; nothing model-specific is written here.

/** Where the source image lands in the square (Python: letterbox_geometry). */
export function letterboxGeometry(srcW, srcH, size) {
  const scale = size / Math.max(srcW, srcH);
  const newW = Math.max(1, Math.min(size, Math.floor(srcW * scale + 0.5)));
  const newH = Math.max(1, Math.min(size, Math.floor(srcH * scale + 0.5)));
  const offX = Math.floor((size - newW) / 2);
  const offY = Math.floor((size - newH) / 2);
  return { srcW, srcH, newW, newH, offX, offY, box: [offX, offY, offX + newW, offY + newH] };
}

/** Footprint edges of an area resize from `src` to `dst` samples: output j integrates the
 * source over [j*src/dst, (j+1)*src/dst); whole/frac split each edge as Python does. */
function footprints(src, dst) {
  const ratio = src / dst;
  const whole = new Int32Array(dst + 1), frac = new Float64Array(dst + 1);
  for (let j = 0; j <= dst; j++) {
    const edge = j * ratio;
    whole[j] = Math.min(Math.floor(edge), src);
    frac[j] = edge - whole[j];
  }
  return { ratio, whole, frac, src, dst };
}

/** One lane (a row or a column of one channel) of an area resize: each output is the integral
 * of the piecewise-constant source over its footprint divided by the footprint's length, from
 * a running sum in doubles in the same order as Python's area_resize_axis (np.cumsum), so the
 * results agree to the last bit. Reads src[base + i*stride], writes out[obase + j*ostride]. */
function resizeLane(fp, csum, src, base, stride, out, obase, ostride, toBytes) {
  const { ratio, whole, frac, src: n, dst } = fp;
  for (let i = 0; i < n; i++) csum[i + 1] = csum[i] + src[base + i * stride];
  let w = whole[0];
  let prev = csum[w] + frac[0] * src[base + Math.min(w, n - 1) * stride];
  for (let j = 0; j < dst; j++) {
    w = whole[j + 1];
    const next = csum[w] + frac[j + 1] * src[base + Math.min(w, n - 1) * stride];
    const v = (next - prev) / ratio;
    out[obase + j * ostride] = toBytes ? Math.min(255, Math.max(0, Math.floor(v + 0.5))) : v;
    prev = next;
  }
}


/** Separable area resize of an interleaved uint8 image with `c` channels:
 * x pass, round to bytes, y pass, round (Python: resize_area). */
export function resizeArea(src, w, h, c, newW, newH) {
  if (w === newW && h === newH) return new Uint8Array(src);
  const mid = new Uint8Array(h * newW * c), out = new Uint8Array(newH * newW * c);
  const fx = footprints(w, newW), fy = footprints(h, newH);
  const csum = new Float64Array(Math.max(w, h) + 1);
  for (let y = 0; y < h; y++) for (let ch = 0; ch < c; ch++) resizeLane(fx, csum, src, y * w * c + ch, c, mid, y * newW * c + ch, c, true);
  for (let k = 0; k < newW * c; k++) resizeLane(fy, csum, mid, k, newW * c, out, k, newW * c, true);
  return out;
}

/** RGBA bytes (canvas order, straight alpha) -> RGB bytes, alpha composited as Python's
 * to_rgb_u8 does: round(channel * alpha / 255). Grey images arrive from the decoder as R=G=B. */
export function rgbaToRgb(rgba, w, h) {
  const out = new Uint8Array(w * h * 3);
  for (let i = 0, j = 0; i < w * h; i++, j += 4) {
    const a = rgba[j + 3];
    if (a === 255) {
      out[i * 3] = rgba[j]; out[i * 3 + 1] = rgba[j + 1]; out[i * 3 + 2] = rgba[j + 2];
    } else {
      const alpha = Math.fround(a / 255);
      for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = Math.min(255, Math.floor(Math.fround(Math.fround(rgba[j + ch] * alpha) + 0.5))); // float32 as numpy
    }
  }
  return out;
}

/** RGB bytes -> size x size x 3 bytes, long side scaled, centred, padded (Python: letterbox). */
export function letterbox(rgb, w, h, spec) {
  const size = spec.target_size;
  const geo = letterboxGeometry(w, h, size);
  const out = new Uint8Array(size * size * 3).fill(spec.pad_value);
  const resized = resizeArea(rgb, w, h, 3, geo.newW, geo.newH);
  for (let y = 0; y < geo.newH; y++) {
    out.set(resized.subarray(y * geo.newW * 3, (y + 1) * geo.newW * 3), ((y + geo.offY) * size + geo.offX) * 3);
  }
  return { pixels: out, geo };
}

/** A source-resolution mask (values 0..1, or 0..255 when any exceeds 1) -> size x size
 * Float32Array of body coverage, padding 0 (Python: letterbox_mask, no rounding). */
export function letterboxMask(mask, w, h, spec) {
  const size = spec.target_size;
  let max = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] > max) max = mask[i];
  const div = max > 1 ? 255 : 1;
  const m = Float32Array.from(mask, (v) => v / div); // Python: float32 mask / 255
  const geo = letterboxGeometry(w, h, size);
  const fx = footprints(w, geo.newW), fy = footprints(h, geo.newH);
  const csum = new Float64Array(Math.max(w, h) + 1);
  const mid = new Float64Array(h * geo.newW);
  for (let y = 0; y < h; y++) resizeLane(fx, csum, m, y * w, 1, mid, y * geo.newW, 1, false);
  const out = new Float32Array(size * size);
  for (let x = 0; x < geo.newW; x++) resizeLane(fy, csum, mid, x, geo.newW, out, geo.offY * size + geo.offX + x, size, false);
  return out;
}

/** Background removal: pixels whose letterboxed mask value is below the threshold become
 * the pad value (Python: apply_mask). Returns a new array. */
export function applyMask(pixels, mask224, spec) {
  const out = new Uint8Array(pixels);
  for (let i = 0; i < mask224.length; i++) {
    if (mask224[i] < spec.mask_threshold) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = spec.pad_value;
  }
  return out;
}

/** size x size x 3 bytes -> Float32Array (x * scale - mean) / std in the card's layout.
 * channel_order BGR swaps channels; layout NCHW (PyTorch) or NHWC (TF). */
export function normalize(pixels, spec, layout) {
  const size = spec.target_size, n = size * size;
  const out = new Float32Array(n * 3);
  const order = spec.channel_order === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const scale = Math.fround(spec.scale);
  const mean = spec.mean.map(Math.fround), std = spec.std.map(Math.fround);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (Math.fround(pixels[i * 3 + order[c]] * scale) - mean[c]) / std[c];
      if (layout === 'NHWC') out[i * 3 + c] = v; else out[c * n + i] = v;
    }
  }
  return out;
}

/** Source RGB (+ optional letterboxed mask) -> { u8 (after background removal), input, geo }. */
export function preprocessRgb(rgb, w, h, spec, layout, mask224 = null) {
  const { pixels, geo } = letterbox(rgb, w, h, spec);
  const u8 = mask224 && spec.background_removal !== 'none' ? applyMask(pixels, mask224, spec) : pixels;
  return { letterboxed: pixels, u8, input: normalize(u8, spec, layout), geo };
}
