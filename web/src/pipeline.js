// One frame -> background removal -> preprocessing -> regressor -> quality check.
import { rgbaToRgb, letterbox, normalize, preprocessRgb } from './preprocess.js';
import { checkFrame } from './gates.js';
import { Runner, segmenterMask } from './model.js';

/** The models the build step listed in models/manifest.json, loaded with their cards. */
export async function loadPipeline(base = 'models/') {
  const manifest = await (await fetch(base + 'manifest.json')).json();
  if (!manifest.regressor) throw Object.assign(new Error('no model installed'), { key: 'no_model' });
  const load = async (file) => {
    const card = await (await fetch(base + file + '.json')).json();
    return Runner.load(new URL(base + file, document.baseURI).href, card);
  };
  const regressor = await load(manifest.regressor);
  const segmenter = manifest.segmenter ? await load(manifest.segmenter) : null;
  const quality = regressor.card.quality || manifest.quality;
  return { manifest, regressor, segmenter, quality, spec: regressor.card.preprocessing };
}

/** Pixels of anything drawable (video, image bitmap, canvas) at its own resolution. */
export function grabRgba(source, w, h) {
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h).data;
}

/** Runs the segmenter (when there is one) on the letterboxed frame: -> size x size mask. */
async function maskOf(pipeline, rgb, w, h) {
  if (!pipeline.segmenter) return null;
  const segCard = pipeline.segmenter.card;
  const segSpec = segCard.preprocessing;
  const { pixels } = letterbox(rgb, w, h, segSpec);
  const flat = await pipeline.segmenter.run(normalize(pixels, segSpec, segCard.input.layout));
  return segmenterMask(flat, segCard, pipeline.spec.target_size);
}

/** RGBA pixels of one frame -> { prediction [height_cm, weight_kg], check, ms }. */
export async function measureFrame(pipeline, rgba, w, h, tiltDeg = null) {
  const t0 = performance.now();
  const rgb = rgbaToRgb(rgba, w, h);
  const mask = await maskOf(pipeline, rgb, w, h);
  const { spec, regressor } = pipeline;
  const { input, geo } = preprocessRgb(rgb, w, h, spec, regressor.card.input.layout, mask);
  const named = await regressor.predictNamed(input);
  const prediction = [named.height_cm, named.weight_kg];
  const check = checkFrame(mask, spec.target_size, geo.box, tiltDeg, pipeline.quality);
  return { prediction, check, ms: performance.now() - t0 };
}
