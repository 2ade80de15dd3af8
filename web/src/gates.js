// Quality gates and aggregation, mirrored from neometer/measure/gates.py and aggregate.py.
// Thresholds come from the model card's `quality` block (models/manifest.json carries it).

export const NO_BODY = 'no_body';
export const OUT_OF_FRAME = 'body_out_of_frame';
export const TILTED = 'camera_tilted';
export const MASK_UNCERTAIN = 'mask_uncertain';
export const TOO_FEW_FRAMES = 'too_few_good_frames';

/** mask: size x size Float32Array (letterboxed probabilities) or null (no segmenter: no mask
 * gates); box: [x0, y0, x1, y1) of the image content inside the square; tilt in degrees or null. */
export function checkFrame(mask, size, box, tiltDeg, t) {
  const failures = [];
  let body = 0, border = 0, uncertain = 0;
  if (mask) {
    const [x0, y0, x1, y1] = box || [0, 0, size, size];
    const W = x1 - x0, H = y1 - y0, b = t.border_px;
    let nFg = 0, nRing = 0, nSoft = 0, nUnsure = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const p = mask[(y + y0) * size + x + x0];
        const inRing = y < b || y >= H - b || x < b || x >= W - b;
        if (p >= 0.5) { nFg++; if (inRing) nRing++; }
        if (p >= 0.1) { nSoft++; if (p < 0.9) nUnsure++; }
      }
    }
    body = nFg / Math.max(1, W * H);
    border = nRing / Math.max(1, nFg);
    uncertain = nUnsure / Math.max(1, nSoft);
    if (body < t.min_body_fraction) failures.push(NO_BODY);
    else {
      if (border > t.max_border_fraction) failures.push(OUT_OF_FRAME);
      if (uncertain > t.max_uncertain_fraction) failures.push(MASK_UNCERTAIN);
    }
  }
  if (tiltDeg !== null && tiltDeg !== undefined && Math.abs(tiltDeg) > t.max_tilt_deg) failures.push(TILTED);
  return { body_fraction: body, border_fraction: border, uncertain_fraction: uncertain, tilt_deg: tiltDeg ?? null, failures };
}

/** DeviceOrientation beta/gamma -> angle between the camera axis and straight down. */
export function tiltFromOrientation(betaDeg, gammaDeg) {
  const r = Math.PI / 180;
  const c = Math.cos(betaDeg * r) * Math.cos(gammaDeg * r);
  return Math.acos(Math.min(1, Math.max(-1, c))) / r;
}

/** numpy.percentile with linear interpolation. */
export function percentile(values, q) {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * (q / 100), lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export const median = (values) => percentile(values, 50);
export const halfIqr = (values) => (percentile(values, 75) - percentile(values, 25)) / 2;

/** predictions: one [height_cm, weight_kg] per frame, in the order of checks. */
export function aggregate(predictions, checks, t) {
  const good = predictions.filter((_, i) => checks[i].failures.length === 0);
  const n = good.length;
  if (n < t.min_good_frames) {
    // Counter.most_common(1): the most frequent failure, ties to the first seen.
    const counts = new Map();
    for (const c of checks) for (const f of c.failures) counts.set(f, (counts.get(f) || 0) + 1);
    let message = TOO_FEW_FRAMES, best = 0;
    for (const [key, count] of counts) if (count > best) { best = count; message = key; }
    return { height_cm: null, weight_kg: null, height_spread_cm: null, weight_spread_kg: null,
      frames_used: n, frames_seen: checks.length, message };
  }
  const h = good.map((p) => p[0]), w = good.map((p) => p[1]);
  return { height_cm: median(h), weight_kg: median(w), height_spread_cm: halfIqr(h), weight_spread_kg: halfIqr(w),
    frames_used: n, frames_seen: checks.length, message: null };
}
