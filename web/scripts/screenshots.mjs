#!/usr/bin/env node
// Screens of the app for the docs: main, measuring, result, saved results (English) and the
// result in Simplified Chinese, measured from the fake camera playing the synthetic infant
// (tests/fixtures/infant.y4m, written by `npm test`), composed into one PNG.
//   node scripts/screenshots.mjs [--out ../docs/img/web_result.png]   (after `npm test`)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launch, waitForState, FIXTURES, REPO } from '../tests/helpers.mjs';

const outArg = process.argv.indexOf('--out');
const out = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(REPO, 'docs', 'img', 'web_result.png'));
const y4m = path.join(FIXTURES, 'infant.y4m');
if (!fs.existsSync(y4m)) { console.error(`${y4m} missing: run \`npm test\` first (it writes the fixtures)`); process.exit(2); }

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'neometer-shots-'));
const server = await startServer();
const shots = [];
for (const lang of ['en', 'zh-CN']) {
  const b = await launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`]);
  const snap = async (name) => { const f = path.join(dir, `${name}_${lang}.png`); await b.page.screenshot({ path: f }); return f; };
  try {
    await b.page.goto(`${server.url}?frames=10&seconds=2&lang=${lang}`);
    await waitForState(b.page, ['ready']);
    if (lang === 'en') shots.push(await snap('main'));
    await b.page.fill('#label', lang === 'en' ? 'Baby Li, bed 4' : '李宝宝 4床');
    await b.page.click('#start-camera');
    await b.page.waitForTimeout(900);
    if (lang === 'en') shots.push(await snap('measuring'));
    await waitForState(b.page, ['result', 'failed'], 90000);
    shots.push(await snap('result'));
    if (lang === 'en') {
      await b.page.click('#result-history');
      await b.page.waitForSelector('#history-list li');
      shots.push(await snap('history'));
    }
  } finally {
    await b.close();
  }
}
await server.close();
// Compose side by side in a page of its own and screenshot it.
const b = await launch();
const imgs = shots.map((f) => `<img src="data:image/png;base64,${fs.readFileSync(f).toString('base64')}">`).join('');
await b.page.setViewportSize({ width: shots.length * (412 + 16) + 16, height: 860 + 32 });
await b.page.setContent(`<body style="margin:0;padding:16px;display:flex;gap:16px;background:#d2d6dc">${imgs}</body>`);
fs.mkdirSync(path.dirname(out), { recursive: true });
await b.page.screenshot({ path: out });
await b.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(`wrote ${out}`);
