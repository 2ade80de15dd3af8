#!/usr/bin/env node
// Runs every web test (node's built-in runner driving playwright-core + Debian chromium) and
// prints one closing line: 'N passed, N failed' (', N skipped' when any).
// First, Python writes the fixtures (reference outputs, synthetic videos): tests/make_fixtures.py.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const models = path.resolve(here, '..', process.env.NEOMETER_WEB_MODELS || path.join(repo, 'models', 'demo', 'export'));
const python = process.env.PYTHON || path.join(repo, '.venv', 'bin', 'python');
const fx = spawnSync(python, [path.join(here, 'make_fixtures.py'), '--models', models, '--out', path.join(here, 'fixtures')], { stdio: 'inherit', cwd: repo });
if (fx.status !== 0) console.error(`make_fixtures.py failed (${fx.error?.message || `exit ${fx.status}`}): tests that need its files will fail`);

const built = path.join(here, '..', 'dist', 'models', 'manifest.json');
if (fs.existsSync(built) && !JSON.parse(fs.readFileSync(built, 'utf8')).regressor) {
  console.error(`no regressor in ${models}: export the demo model (python export.py --target tflite) or set NEOMETER_WEB_MODELS to a folder with regressor_fp32.tflite + its .json card; the tests below will fail`);
}

const files = process.argv.slice(2).length ? process.argv.slice(2)
  : fs.readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(here, f));
// One file at a time: each test drives a whole browser, and the machine has two cores.
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => { process.stdout.write(d); out += d; });
child.on('close', (code) => {
  const n = (k) => Number((out.match(new RegExp(`^ℹ ${k} (\\d+)`, 'm')) || [])[1] || 0);
  const skipped = n('skipped');
  console.log(`${n('pass')} passed, ${n('fail') + n('cancelled')} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code ?? 1);
});
