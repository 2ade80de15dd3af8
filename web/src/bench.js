// The benchmark page (?bench=1): N timed inferences of one artifact, reported in the shared
// result schema (schemas/bench_result.schema.json). scripts/bench.mjs drives it headless.
import { Runner, initLiteRt } from './model.js';
import { preprocessRgb } from './preprocess.js';

const LITERT_VERSION = __LITERT_VERSION__; // eslint-disable-line no-undef -- set by the build

function stats(times) {
  const s = [...times].sort((a, b) => a - b);
  const q = (p) => { const pos = (s.length - 1) * p, lo = Math.floor(pos), hi = Math.ceil(pos); return s[lo] + (s[hi] - s[lo]) * (pos - lo); };
  return { p50_ms: q(0.5), p90_ms: q(0.9), min_ms: s[0], max_ms: s[s.length - 1], mean_ms: s.reduce((a, b) => a + b, 0) / s.length };
}

/** A deterministic input in [-2, 2] (a seeded LCG), so runs are repeatable. */
function syntheticInput(n) {
  const x = new Float32Array(n);
  let state = 12345;
  for (let i = 0; i < n; i++) { state = (state * 1103515245 + 12345) >>> 0; x[i] = (state / 2 ** 32) * 4 - 2; }
  return x;
}

async function sha256Hex(buf) {
  const digest = await crypto.subtle.digest('SHA-256', buf);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export async function runBench(params) {
  const out = document.getElementById('bench-result');
  try {
    const result = await bench(params);
    out.textContent = JSON.stringify(result, null, 1);
    document.body.dataset.state = 'bench-done';
    return result;
  } catch (err) {
    out.textContent = `benchmark failed: ${err.stack || err}`;
    document.body.dataset.state = 'bench-failed';
    throw err;
  }
}

async function bench(params) {
  let modelUrl = params.get('model'), cardUrl = params.get('card');
  if (!modelUrl) {
    const manifest = await (await fetch('models/manifest.json')).json();
    modelUrl = `models/${manifest.regressor}`;
  }
  cardUrl = cardUrl || `${modelUrl}.json`;
  const runs = Number(params.get('runs')) || 20, warmup = Number(params.get('warmup') ?? 3);
  const card = await (await fetch(cardUrl)).json();
  await initLiteRt();
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const runner = await Runner.load(bytes, card);
  const size = card.input.shape.reduce((a, b) => a * b, 1);
  const x = syntheticInput(size);
  for (let i = 0; i < warmup; i++) await runner.run(x);
  const times = [];
  let output = null;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    output = await runner.run(x);
    times.push(performance.now() - t0);
  }
  // End to end: a 1280x720 frame through the card's preprocessing and the model.
  const e2e = [];
  const frame = new Uint8Array(1280 * 720 * 3).map((_, i) => (i * 7) % 251);
  for (let i = 0; i < Math.min(5, runs); i++) {
    const t0 = performance.now();
    const { input } = preprocessRgb(frame, 1280, 720, card.preprocessing, card.input.layout);
    await runner.run(input);
    e2e.push(performance.now() - t0);
  }
  const now = new Date();
  return {
    schema_version: 1,
    run: { id: `browser-${now.toISOString().replace(/[:.]/g, '-')}`, date: now.toISOString(), git_commit: null, git_dirty: null },
    device: { kind: 'browser', model: null, os: navigator.userAgentData?.platform || navigator.platform || null,
      cpu: null, cpu_flags: [], cores: navigator.hardwareConcurrency || null, accelerator: 'wasm (XNNPACK, 1 thread)',
      throttle: Number(params.get('throttle')) || null },
    software: { runtime: 'litert.js', runtime_version: LITERT_VERSION, converter: card.converter?.name ?? null,
      converter_version: card.converter?.version ?? null, versions: { user_agent: navigator.userAgent } },
    model: { artifact: card.artifact?.file ?? modelUrl.split('/').pop(), sha256: await sha256Hex(bytes),
      format: card.format, precision: card.precision, size_bytes: bytes.length },
    latency: { warmup, runs, threads: 1, load_ms: runner.loadMs, ...stats(times),
      end_to_end_p50_ms: stats(e2e).p50_ms, peak_memory_mb: performance.memory ? performance.memory.usedJSHeapSize / 2 ** 20 : null },
    parity: null,
    status: 'measured',
    notes: [`output of the synthetic input: ${Array.from(output).map((v) => v.toFixed(4)).join(', ')}`,
      'end_to_end_p50_ms: 1280x720 RGB frame -> letterbox + normalise -> inference'],
  };
}
