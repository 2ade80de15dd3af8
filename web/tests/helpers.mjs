// Shared test helpers: the built app served locally, Debian's chromium driven by playwright-core.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../scripts/serve.mjs';

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(WEB, '..');
export const DIST = path.join(WEB, 'dist');
export const GOLDEN = path.join(REPO, 'tests', 'golden');
export const FIXTURES = path.join(WEB, 'tests', 'fixtures');
export const MODELS = path.resolve(WEB, process.env.NEOMETER_WEB_MODELS || path.join(REPO, 'models', 'demo', 'export'));
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  // Hermetic: no name resolves except the local server's, so nothing could leave even by mistake.
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1'];

export async function startServer() {
  if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error('web/dist is missing: run `npm run build` (npm test does)');
  return serve({ root: DIST, mounts: { '/golden/': GOLDEN, '/fixtures/': FIXTURES } });
}

/** A fresh browser with its own profile (persistent context: service workers and IndexedDB
 * behave as on a phone). extraArgs: e.g. the fake camera flags. -> { context, page, close } */
export async function launch(extraArgs = [], { lang = 'en-US' } = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'neometer-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...extraArgs], locale: lang,
    viewport: { width: 412, height: 860 }, deviceScaleFactor: 1, acceptDownloads: true,
  });
  const page = context.pages()[0] || await context.newPage();
  const consoleLines = [];
  // Every request the browser makes (pages and service worker) for the same-origin check.
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  return {
    context, page, consoleLines, requests,
    close: async () => { await context.close(); fs.rmSync(userDataDir, { recursive: true, force: true }); },
  };
}

/** Wait until the app's state is one of `states`, with the page's console on failure. */
export async function waitForState(page, states, timeout = 60000, consoleLines = []) {
  try {
    await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout, polling: 100 });
  } catch (err) {
    const state = await page.evaluate(() => document.body.dataset.state).catch(() => '?');
    throw new Error(`app state ${state}, waited for ${states}: ${err.message}\n${consoleLines.slice(-20).join('\n')}`);
  }
  return page.evaluate(() => document.body.dataset.state);
}

export function readTensor(entry, dir = GOLDEN) {
  const buf = fs.readFileSync(path.join(dir, entry.file));
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return { uint8: () => new Uint8Array(ab), float32: () => new Float32Array(ab) }[entry.dtype]();
}

export function goldenManifest() {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN, 'manifest.json'), 'utf8'));
}

export function regressorCardName() {
  const m = JSON.parse(fs.readFileSync(path.join(DIST, 'models', 'manifest.json'), 'utf8'));
  return m.regressor;
}

/** Requests that left the app's origin (data: and blob: URLs stay inside the page). */
export function foreignRequests(requests, origin) {
  return requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u));
}

/** The bound for "within the demo model's error": 3x the demo model's per-recording MAE (the
 * median over a recording's frames, which is what the app shows) from its evaluation report,
 * models/demo/report/report.json (`neometer eval`); without a report, a documented generous
 * bound of about three population SDs of the synthetic newborns (length SD 1.9 cm, weight SD
 * 0.45 kg), which still catches unit mix-ups, swapped or standardised outputs and a broken
 * preprocessing. */
export function accuracyTolerance() {
  const report = path.join(REPO, 'models', 'demo', 'report', 'report.json');
  const fallback = { height_cm: 6.0, weight_kg: 1.4, source: 'generous bound (no models/demo/report/report.json)' };
  if (!fs.existsSync(report)) return fallback;
  const perRecording = JSON.parse(fs.readFileSync(report, 'utf8')).per_recording || {};
  const h = perRecording.height?.mae, w = perRecording.weight?.mae;
  if (typeof h !== 'number' || typeof w !== 'number') return fallback;
  return { height_cm: 3 * h, weight_kg: 3 * w, source: '3x per_recording.{height,weight}.mae of models/demo/report/report.json' };
}

/** numpy.median (mean of the two middle values for an even count). */
export function median(values) {
  const s = [...values].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
