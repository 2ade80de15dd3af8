#!/usr/bin/env node
// Browser benchmark driver (benchmarks.py --device browser calls it):
//   node web/scripts/bench.mjs --model X.tflite [--card X.tflite.json] [--runs N] [--warmup W]
//                              [--throttle R] --out result.json
// Serves the built app (web/dist, built first when missing) plus the chosen artifact, opens the
// benchmark page (?bench=1) in headless Debian chromium with LiteRT.js's single-threaded wasm,
// applies CDP Emulation.setCPUThrottlingRate R, and writes the page's result JSON (schema
// schemas/bench_result.schema.json, device.kind "browser", device.throttle R).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(WEB, '..');

function parseArgs(argv) {
  const a = { runs: 20, warmup: 3, throttle: 1, card: null, out: null, model: null, chromium: process.env.CHROMIUM || '/usr/bin/chromium', timeout: 600 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in a)) throw new Error(`unknown option ${argv[i]}`);
    a[k] = argv[++i];
  }
  for (const k of ['runs', 'warmup', 'throttle', 'timeout']) a[k] = Number(a[k]);
  return a;
}

function git(args) {
  try { return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; }
}

function fail(message) {
  console.error(`bench.mjs: ${message}`);
  process.exit(2);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args.model || !args.out) fail('--model X.tflite and --out result.json are required');
  const model = path.resolve(args.model), card = path.resolve(args.card || `${args.model}.json`);
  const problems = [];
  if (!fs.existsSync(model)) problems.push(`${model}: no such model file`);
  if (!fs.existsSync(card)) problems.push(`${card}: no model card (pass --card)`);
  if (!(args.runs >= 1)) problems.push('--runs must be >= 1');
  if (!(args.throttle >= 1)) problems.push('--throttle must be >= 1 (1 = no throttling)');
  if (!fs.existsSync(args.chromium)) problems.push(`${args.chromium}: chromium not found (apt-get install chromium, or set CHROMIUM)`);
  if (problems.length) fail(problems.join('; '));
  if (!fs.existsSync(path.join(WEB, 'dist', 'index.html'))) {
    const { buildApp } = await import('./build.mjs');
    await buildApp();
  }
  const server = await serve({ root: path.join(WEB, 'dist'), mounts: { '/bench-model/': path.dirname(model), '/bench-card/': path.dirname(card) } });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'neometer-bench-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: args.chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: args.throttle });
    const q = new URLSearchParams({ bench: '1', model: `/bench-model/${encodeURIComponent(path.basename(model))}`,
      card: `/bench-card/${encodeURIComponent(path.basename(card))}`, runs: String(args.runs), warmup: String(args.warmup), throttle: String(args.throttle) });
    await page.goto(`${server.url}?${q}`);
    await page.waitForFunction(() => ['bench-done', 'bench-failed'].includes(document.body.dataset.state), null, { timeout: args.timeout * 1000, polling: 200 });
    const text = await page.textContent('#bench-result');
    if (await page.evaluate(() => document.body.dataset.state) !== 'bench-done') fail(text);
    const result = JSON.parse(text);
    result.device.throttle = args.throttle;
    result.device.cpu = os.cpus()[0]?.model ?? null;
    result.device.model = `headless ${context.browser()?.version() ?? 'chromium'}`;
    result.run.git_commit = git(['rev-parse', 'HEAD']);
    const dirty = git(['status', '--porcelain']);
    result.run.git_dirty = dirty === null ? null : dirty.length > 0;
    result.model.artifact = path.relative(REPO, model).startsWith('..') ? model : path.relative(REPO, model);
    result.notes.push(`CDP Emulation.setCPUThrottlingRate ${args.throttle}; host ${os.cpus().length} cores`);
    const tmp = `${args.out}.tmp`;
    fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(result, null, 2) + '\n');
    fs.renameSync(tmp, args.out);
    console.log(`browser: ${path.basename(model)} p50 ${result.latency.p50_ms.toFixed(1)} ms (throttle ${args.throttle}x, ${args.runs} runs) -> ${args.out}`);
  } finally {
    await context.close();
    await server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((err) => fail(err.stack || String(err)));
