#!/usr/bin/env node
// Build the PWA into dist/: bundle src/ with esbuild, copy public/, LiteRT.js's wasm (served by
// the app itself) and the exported models, write models/manifest.json, draw the icons, and
// generate the service worker with a precache list keyed by content hashes.
//
// Models: --models DIR, else env NEOMETER_WEB_MODELS, else ../models/demo/export. The folder
// holds regressor_<precision>.tflite (+ .json card) and optionally segmenter_*.tflite (+ .json).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(WEB, '..');
const require_ = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

export const DEFAULT_MODELS = path.join(REPO, 'models', 'demo', 'export');
// Only these LiteRT.js builds ship: single-threaded relaxed-SIMD, and the compat build for
// browsers without relaxed SIMD (LiteRT.js picks one at run time).
const WASM_FILES = ['litert_wasm_internal.js', 'litert_wasm_internal.wasm', 'litert_wasm_compat_internal.js', 'litert_wasm_compat_internal.wasm'];

function copyDir(src, dst) {
  fs.mkdirSync(dst, { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, e.name), d = path.join(dst, e.name);
    if (e.isDirectory()) copyDir(s, d); else fs.copyFileSync(s, d);
  }
}

/** Pick the regressor (fp32 first) and segmenter from an export folder; -> manifest. */
export function chooseModels(dir) {
  if (!fs.existsSync(dir)) return { regressor: null, segmenter: null, files: [] };
  const tflite = fs.readdirSync(dir).filter((f) => f.endsWith('.tflite') && fs.existsSync(path.join(dir, `${f}.json`)));
  const rank = (f) => ['fp32', 'fp16', 'int8'].findIndex((p) => f.includes(`_${p}`));
  const best = (role) => tflite.filter((f) => f.startsWith(`${role}_`)).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))[0] || null;
  const regressor = best('regressor'), segmenter = best('segmenter');
  return { regressor, segmenter, files: [regressor, segmenter].filter(Boolean) };
}

function qualityThresholds(card) {
  if (card?.quality) return card.quality;
  // The card predates the quality block: the golden manifest carries Python's defaults.
  const golden = path.join(REPO, 'tests', 'golden', 'manifest.json');
  if (fs.existsSync(golden)) return require_(golden).quality;
  throw new Error(`the model card has no "quality" block and ${golden} is missing: run \`make golden\` first`);
}

// --- icons: a tiny PNG encoder (zlib is built in), so no image tool is needed -------------
function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function png(size, pixel) {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) raw.set(pixel(x / size, y / size), y * (size * 4 + 1) + 1 + x * 4);
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4); ihdr[8] = 8; ihdr[9] = 6;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// A ruler across a dark-blue square: white bar with tick marks.
function iconPixel(u, v) {
  const bar = v > 0.42 && v < 0.6 && u > 0.14 && u < 0.86;
  const tick = v > 0.42 && v < (Math.round(u * 20) % 2 ? 0.5 : 0.54) && Math.abs(u * 20 - Math.round(u * 20)) < 0.18 && u > 0.18 && u < 0.82;
  if (tick) return [11, 61, 92, 255];
  if (bar) return [255, 255, 255, 255];
  return [11, 61, 92, 255];
}

function walk(dir, base = dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name), base) : [path.relative(base, path.join(dir, e.name)).split(path.sep).join('/')]);
}

export async function buildApp({ out = path.join(WEB, 'dist'), models = arg('models', process.env.NEOMETER_WEB_MODELS || DEFAULT_MODELS) } = {}) {
  models = path.resolve(WEB, models);
  fs.rmSync(out, { recursive: true, force: true });
  copyDir(path.join(WEB, 'public'), out);
  const litertPkg = require_(path.join(WEB, 'node_modules', '@litertjs', 'core', 'package.json'));
  await build({
    entryPoints: [path.join(WEB, 'src', 'main.js')], bundle: true, format: 'esm', target: 'es2022',
    outfile: path.join(out, 'app.js'), minify: true, sourcemap: false, logLevel: 'warning',
    define: { __LITERT_VERSION__: JSON.stringify(litertPkg.version) },
  });
  fs.mkdirSync(path.join(out, 'wasm'));
  for (const f of WASM_FILES) fs.copyFileSync(path.join(WEB, 'node_modules', '@litertjs', 'core', 'wasm', f), path.join(out, 'wasm', f));
  fs.mkdirSync(path.join(out, 'icons'));
  for (const s of [192, 512]) fs.writeFileSync(path.join(out, 'icons', `icon-${s}.png`), png(s, iconPixel));

  const chosen = chooseModels(models);
  fs.mkdirSync(path.join(out, 'models'));
  for (const f of chosen.files) {
    fs.copyFileSync(path.join(models, f), path.join(out, 'models', f));
    fs.copyFileSync(path.join(models, `${f}.json`), path.join(out, 'models', `${f}.json`));
  }
  const card = chosen.regressor ? require_(path.join(models, `${chosen.regressor}.json`)) : null;
  const manifest = { regressor: chosen.regressor, segmenter: chosen.segmenter, source: path.relative(REPO, models) || '.',
    quality: chosen.regressor ? qualityThresholds(card) : null };
  fs.writeFileSync(path.join(out, 'models', 'manifest.json'), JSON.stringify(manifest, null, 1));

  // Service worker: every built file, with its content hash; the cache name hashes them all,
  // so any change installs a fresh cache and removes the old one.
  const files = walk(out).filter((f) => f !== 'sw.js').sort();
  const precache = files.map((f) => ({ url: f, hash: createHash('sha256').update(fs.readFileSync(path.join(out, f))).digest('hex').slice(0, 16) }));
  const version = createHash('sha256').update(JSON.stringify(precache)).digest('hex').slice(0, 16);
  const sw = fs.readFileSync(path.join(WEB, 'src', 'sw.template.js'), 'utf8')
    .replace('__PRECACHE__', JSON.stringify(precache)).replace('__VERSION__', JSON.stringify(version));
  fs.writeFileSync(path.join(out, 'sw.js'), sw);
  return { out, manifest, version, files: precache.length };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await buildApp();
  const m = r.manifest;
  console.log(`built ${r.out}: ${r.files} files, cache ${r.version}; regressor ${m.regressor ?? 'NONE'}, segmenter ${m.segmenter ?? 'none'} (from ${m.source})`);
}
