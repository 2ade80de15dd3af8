// Model loading and inference with LiteRT.js. The card (the artifact's JSON sidecar) says
// the input shape, layout, dtype and quantization, and which output index is which quantity.
import { loadLiteRt, loadAndCompile, Tensor } from '@litertjs/core';

let liteRtReady = null;

/** The wasm is served from the app itself (wasm/ beside index.html), never from a CDN. */
export function initLiteRt(base = new URL('wasm/', document.baseURI).href) {
  if (!liteRtReady) liteRtReady = loadLiteRt(base);
  return liteRtReady;
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function quantize(x, dtype, q) {
  const Arr = dtype === 'int8' ? Int8Array : Uint8Array;
  const [lo, hi] = dtype === 'int8' ? [-128, 127] : [0, 255];
  const out = new Arr(x.length);
  for (let i = 0; i < x.length; i++) out[i] = clamp(Math.round(x[i] / q.scale) + q.zero_point, lo, hi);
  return out;
}

function dequantize(arr, q) {
  if (arr instanceof Float32Array) return arr;
  const out = new Float32Array(arr.length);
  for (let i = 0; i < arr.length; i++) out[i] = q ? (arr[i] - q.zero_point) * q.scale : arr[i];
  return out;
}

export class Runner {
  constructor(model, card, url) { this.model = model; this.card = card; this.url = url; }

  /** url: the .tflite; card: its parsed JSON. */
  static async load(url, card) {
    await initLiteRt();
    const t0 = performance.now();
    const model = await loadAndCompile(url, { accelerator: 'wasm' });
    const runner = new Runner(model, card, url);
    runner.loadMs = performance.now() - t0;
    return runner;
  }

  /** x: Float32Array, normalised, in the card's layout -> flat Float32Array of outputs
   * (dequantized when the card says the output is quantized). */
  async run(x) {
    const inp = this.card.input;
    const data = inp.dtype === 'int8' || inp.dtype === 'uint8' ? quantize(x, inp.dtype, inp.quantization) : x;
    const tensor = new Tensor(data, inp.shape);
    let outputs;
    try {
      outputs = await this.model.run(tensor);
    } finally {
      tensor.delete();
    }
    try {
      const raw = await outputs[0].data();
      const q = this.card.outputs?.[0]?.quantization || this.card.output_tensor?.quantization || null;
      return dequantize(raw.slice ? raw.slice() : raw, q);
    } finally {
      for (const o of outputs) o.delete();
    }
  }

  /** Regressor: -> { [output name]: value } using the card's output indices. */
  async predictNamed(x) {
    const flat = await this.run(x);
    const named = {};
    for (const o of this.card.outputs) named[o.name] = flat[o.index];
    return named;
  }
}

/** Segmenter output -> size x size body probabilities in the regressor's letterbox space.
 * The segmenter sees the same letterboxed square; its output (1xHxW, 1x1xHxW or 1xHxWx1,
 * probabilities or logits per its card) is resampled (nearest) when its size differs. */
export function segmenterMask(flat, segCard, size) {
  const shape = segCard.output_tensor?.shape || segCard.outputs?.[0]?.shape || segCard.input.shape;
  const dims = shape.filter((d) => d > 1);
  const [mh, mw] = dims.length >= 2 ? dims.slice(-2) : [size, size];
  const h = Math.round(Math.sqrt(flat.length * (mh / mw))) || size;
  const w = Math.round(flat.length / h) || size;
  const logits = /logit/i.test(segCard.outputs?.[0]?.name || '') || segCard.outputs?.[0]?.unit === 'logit';
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let v = flat[Math.floor(y * h / size) * w + Math.floor(x * w / size)];
      if (logits) v = 1 / (1 + Math.exp(-v));
      out[y * size + x] = v;
    }
  }
  return out;
}
