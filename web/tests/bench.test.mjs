// The browser benchmark: scripts/bench.mjs (what `benchmarks.py --device browser` runs) writes a
// result that validates against schemas/bench_result.schema.json, with the throttle applied.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DIST, MODELS, REPO, WEB, regressorCardName } from './helpers.mjs';

const PYTHON = process.env.PYTHON || path.join(REPO, '.venv', 'bin', 'python');

test('bench.mjs writes a schema-valid browser result', async () => {
  const model = path.join(DIST, 'models', regressorCardName());
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'neometer-bench-test-')), 'result.json');
  execFileSync(process.execPath, [path.join(WEB, 'scripts', 'bench.mjs'), '--model', model, '--runs', '3', '--warmup', '1', '--throttle', '2', '--out', out],
    { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120000 });
  const result = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(result.device.kind, 'browser');
  assert.equal(result.device.throttle, 2);
  assert.equal(result.latency.runs, 3);
  assert.equal(result.latency.threads, 1);
  assert.ok(result.latency.min_ms > 0 && result.latency.min_ms <= result.latency.p50_ms && result.latency.p50_ms <= result.latency.max_ms);
  const card = JSON.parse(fs.readFileSync(`${model}.json`, 'utf8'));
  assert.equal(result.model.sha256, card.artifact.sha256, 'benchmarked bytes are not the card\'s artifact');
  // Validate with the same JSON Schema the Python side uses.
  const check = `import json, jsonschema, sys
schema = json.load(open(sys.argv[1])); doc = json.load(open(sys.argv[2]))
jsonschema.Draft202012Validator(schema).validate(doc); print("valid")`;
  const verdict = execFileSync(PYTHON, ['-c', check, path.join(REPO, 'schemas', 'bench_result.schema.json'), out], { encoding: 'utf8' });
  assert.match(verdict, /valid/);
  void MODELS;
});

test('bench.mjs refuses a missing model with a clear message', () => {
  let err;
  try {
    execFileSync(process.execPath, [path.join(WEB, 'scripts', 'bench.mjs'), '--model', '/nonexistent/x.tflite', '--out', '/tmp/x.json'], { stdio: 'pipe', encoding: 'utf8' });
  } catch (e) { err = e; }
  assert.ok(err, 'exited 0 on a missing model');
  assert.equal(err.status, 2);
  assert.match(err.stderr, /no such model file/);
});
