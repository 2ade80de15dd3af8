// Contract 3: the page's decoding, preprocessing, gates, aggregation and LiteRT.js outputs
// against the golden vectors Python wrote (tests/golden/, served at /golden/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, launch, waitForState, goldenManifest, regressorCardName, FIXTURES, MODELS, REPO } from './helpers.mjs';

let server, browser, page;
const manifest = goldenManifest();

before(async () => {
  server = await startServer();
  browser = await launch();
  page = browser.page;
  await page.goto(server.url);
  await waitForState(page, ['ready'], 60000, browser.consoleLines);
});
after(async () => { await browser?.close(); await server?.close(); });

// In the page: decode the golden PNG as a user's file would be, preprocess it from the card's
// spec, and compare every stage with Python's tensors. Returns the worst differences.
async function comparePreprocessing(entry) {
  return page.evaluate(async ({ entry }) => {
    const { preprocess } = window.neometer;
    const spec = window.neometer.pipeline.spec;
    const layout = window.neometer.pipeline.regressor.card.input.layout;
    const tensor = async (t, Arr) => new Arr(await (await fetch(`/golden/${t.file}`)).arrayBuffer());
    const maxDiff = (a, b) => { let m = 0, n = 0; for (let i = 0; i < a.length; i++) { const d = Math.abs(a[i] - b[i]); if (d > m) m = d; if (d > 0) n++; } return { max: m, count: n }; };
    const img = await window.neometer.decodeImage(`/golden/${entry.image}`);
    const rgb = preprocess.rgbaToRgb(img.rgba, img.w, img.h);
    const src = await tensor(entry.source_rgb_u8, Uint8Array);
    const out = { w: img.w, h: img.h, decode: maxDiff(rgb, src) };
    let mask = null;
    if (entry.mask) {
      const m = await window.neometer.decodeImage(`/golden/${entry.mask}`);
      const grey = new Uint8Array(m.w * m.h).map((_, i) => m.rgba[i * 4]);
      mask = preprocess.letterboxMask(grey, m.w, m.h, spec);
      const expected = await tensor(entry.mask_letterboxed_f32, Float32Array);
      out.mask = maxDiff(mask, expected);
      // Pixels whose Python coverage is within 1e-6 of the threshold may flip either way.
      let flips = 0;
      for (let i = 0; i < mask.length; i++) if ((mask[i] >= spec.mask_threshold) !== (expected[i] >= spec.mask_threshold) && Math.abs(expected[i] - spec.mask_threshold) > 1e-6) flips++;
      out.maskFlips = flips;
    }
    // Preprocess Python's decoded pixels too, so a decoder difference cannot hide here.
    const fromPage = preprocess.preprocessRgb(rgb, img.w, img.h, spec, layout, mask);
    const fromSrc = preprocess.preprocessRgb(src, img.w, img.h, spec, 'NCHW', mask);
    const lb = await tensor(entry.letterboxed_u8, Uint8Array);
    const nchw = await tensor(entry.input_nchw_f32, Float32Array);
    out.geo = fromSrc.geo;
    out.letterboxed = maxDiff(fromSrc.u8, lb);
    out.letterboxedFromPageDecode = maxDiff(fromPage.u8, lb);
    out.nchw = maxDiff(fromSrc.input, nchw);
    return out;
  }, { entry });
}

for (const entry of manifest.images) {
  test(`golden preprocessing: ${entry.name}`, async () => {
    const r = await comparePreprocessing(entry);
    assert.deepEqual([r.w, r.h], [entry.src_w, entry.src_h]);
    assert.deepEqual([r.geo.newW, r.geo.newH, r.geo.offX, r.geo.offY],
      [entry.letterbox.new_w, entry.letterbox.new_h, entry.letterbox.off_x, entry.letterbox.off_y]);
    // Straight-alpha pixels pass through the canvas's premultiplied store: one grey level.
    assert.ok(r.decode.max <= (entry.channels === 4 ? 1 : 0), `decode differs by ${r.decode.max} on ${r.decode.count} values`);
    if (entry.mask) {
      assert.ok(r.mask.max < 1e-5, `letterboxed mask differs by ${r.mask.max}`);
      assert.equal(r.maskFlips, 0, 'background removal keeps different pixels');
    }
    assert.ok(r.letterboxed.max <= 1, `letterboxed image differs by ${r.letterboxed.max} grey levels (${r.letterboxed.count} values)`);
    // Off-by-one only at rounding ties: a systematic drift would touch many more values.
    assert.ok(r.letterboxed.count <= 0.01 * entry.letterboxed_u8.shape.reduce((a, b) => a * b), `${r.letterboxed.count} values off by one`);
    // Python-decoded vs page-decoded (alpha rounding) may add one more level on RGBA images.
    assert.ok(r.letterboxedFromPageDecode.max <= (entry.channels === 4 ? 2 : 1), `page-decoded letterbox differs by ${r.letterboxedFromPageDecode.max}`);
    // One grey level after normalisation is scale/std: the tensor may differ by at most that.
    const spec = manifest.preprocessing;
    const oneLevel = spec.scale / Math.min(...spec.std) + 1e-5;
    assert.ok(r.nchw.max <= oneLevel, `input tensor differs by ${r.nchw.max} (> one grey level ${oneLevel})`);
  });
}

test('golden quality gates match neometer.measure.gates', async () => {
  const results = await page.evaluate(async (cases) => {
    const { gates } = window.neometer;
    const q = window.neometer.pipeline.quality;
    const out = [];
    for (const c of cases) {
      const mask = new Float32Array(await (await fetch(`/golden/${c.mask.file}`)).arrayBuffer());
      out.push(gates.checkFrame(mask, c.mask.shape[1], c.box, c.tilt_deg, q));
    }
    return out;
  }, manifest.gates);
  manifest.gates.forEach((c, i) => {
    const got = results[i], exp = c.expected;
    assert.deepEqual(got.failures, exp.failures, `${c.name}: failures`);
    for (const k of ['body_fraction', 'border_fraction', 'uncertain_fraction']) {
      assert.ok(Math.abs(got[k] - exp[k]) < 1e-9, `${c.name}: ${k} ${got[k]} vs ${exp[k]}`);
    }
  });
  // The golden cases must exercise every failure the nurse can see.
  const seen = new Set(manifest.gates.flatMap((c) => c.expected.failures));
  for (const key of ['no_body', 'body_out_of_frame', 'camera_tilted', 'mask_uncertain']) assert.ok(seen.has(key), key);
});

test('golden aggregation matches neometer.measure.aggregate', async () => {
  const results = await page.evaluate((cases) => {
    const { gates } = window.neometer;
    const q = window.neometer.pipeline.quality;
    return cases.map((c) => gates.aggregate(c.predictions, c.failures.map((f) => ({ failures: f })), q));
  }, manifest.aggregation);
  manifest.aggregation.forEach((c, i) => {
    const got = results[i], exp = c.expected;
    for (const [k, v] of Object.entries(exp)) {
      if (typeof v === 'number' && !Number.isInteger(v)) assert.ok(Math.abs(got[k] - v) < 1e-9, `${c.name}: ${k} ${got[k]} vs ${v}`);
      else assert.equal(got[k], v, `${c.name}: ${k}`);
    }
  });
});

test('LiteRT.js outputs match Python TFLite on the golden inputs', async () => {
  const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'reference_outputs.json'), 'utf8'));
  assert.equal(ref.model, regressorCardName().replace(/\.json$/, ''), 'reference computed for another model');
  const outputs = await page.evaluate(async (images) => {
    const runner = window.neometer.pipeline.regressor;
    const res = {};
    for (const e of images) {
      let x = new Float32Array(await (await fetch(`/golden/${e.input_nchw_f32.file}`)).arrayBuffer());
      if (runner.card.input.layout === 'NHWC') { // the golden tensor is NCHW
        const [, , h, w] = e.input_nchw_f32.shape, n = h * w, y = new Float32Array(x.length);
        for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) y[i * 3 + c] = x[c * n + i];
        x = y;
      }
      res[e.name] = Array.from(await runner.run(x));
    }
    return res;
  }, manifest.images);
  // Golden outputs written for this very artifact (when `neometer golden` saw it) must agree too.
  const card = regressorCardName() + '.json';
  const goldenFor = manifest.artifacts.find((a) => a.card === card && path.resolve(REPO, a.path) === path.join(MODELS, card));
  let compared = 0;
  for (const e of manifest.images) {
    const expectations = [ref.outputs[e.name], goldenFor ? e.outputs[card] : null].filter(Boolean);
    assert.ok(expectations.length > 0, `no reference output for ${e.name}`);
    for (const expected of expectations) {
      const got = outputs[e.name];
      assert.equal(got.length, expected.length);
      got.forEach((v, i) => {
        // fp32: XNNPACK kernels in wasm vs native differ in summation order only.
        const tol = 1e-4 * Math.max(1, Math.abs(expected[i]));
        assert.ok(Math.abs(v - expected[i]) <= tol, `${e.name}[${i}]: ${v} vs ${expected[i]}`);
      });
      compared++;
    }
  }
  assert.ok(compared >= manifest.images.length);
  // The images differ, so must the outputs: a constant model would prove nothing here.
  const heights = Object.values(outputs).map((o) => o[0]);
  assert.ok(Math.max(...heights) - Math.min(...heights) > 1e-3, 'the model gives the same outputs for every golden image, so this parity check proves nothing: is it trained?');
});

test('segmenter (when the build has one): LiteRT.js masks match Python TFLite', async (t) => {
  const refPath = path.join(FIXTURES, 'segmenter_outputs.json');
  const hasSegmenter = await page.evaluate(() => !!window.neometer.pipeline.segmenter);
  if (!hasSegmenter) { t.skip('no segmenter in this build'); return; }
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  for (const e of manifest.images) {
    const expected = new Float32Array(fs.readFileSync(path.join(FIXTURES, ref.files[e.name])).buffer.slice(0));
    const r = await page.evaluate(async ({ e, expected }) => {
      const { preprocess, pipeline } = window.neometer;
      const seg = pipeline.segmenter, spec = seg.card.preprocessing;
      const src = new Uint8Array(await (await fetch(`/golden/${e.source_rgb_u8.file}`)).arrayBuffer());
      const { pixels } = preprocess.letterbox(src, e.src_w, e.src_h, spec);
      const flat = await seg.run(preprocess.normalize(pixels, spec, seg.card.input.layout));
      const mask = window.neometer.segmenterMask(flat, seg.card, pipeline.spec.target_size);
      let max = 0; for (let i = 0; i < flat.length; i++) max = Math.max(max, Math.abs(flat[i] - expected[i]));
      let lo = Infinity, hi = -Infinity; for (const v of mask) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      return { n: flat.length, max, lo, hi, maskLen: mask.length };
    }, { e, expected: Array.from(expected) });
    assert.equal(r.n, expected.length, `${e.name}: output size`);
    assert.ok(r.max < 1e-4, `${e.name}: segmenter output differs by ${r.max}`);
    assert.ok(r.lo >= 0 && r.hi <= 1, `${e.name}: mask outside [0, 1]`);
  }
});
