// Offline: after one visit the service worker holds the shell, the wasm and the models, so a
// reload with the server stopped (the network cut) still loads the app and still measures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, launch, waitForState, goldenManifest, foreignRequests, GOLDEN } from './helpers.mjs';

test('after one visit, the app reloads and measures with the network cut', async () => {
  const server = await startServer();
  const browser = await launch();
  const { page } = browser;
  try {
    await page.goto(server.url);
    await waitForState(page, ['ready'], 60000, browser.consoleLines);
    // The first visit installs the service worker; wait until it controls the page.
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
    });
    const origin = new URL(server.url).origin;
    await server.close();
    const served = server.requests.length;
    await page.reload();
    await waitForState(page, ['ready'], 60000, browser.consoleLines);
    const portrait = goldenManifest().images.find((e) => e.name === 'portrait');
    await page.setInputFiles('#file-input', path.join(GOLDEN, portrait.image));
    const state = await waitForState(page, ['result', 'failed'], 60000, browser.consoleLines);
    const m = await page.evaluate(() => window.neometer.lastMeasurement);
    assert.ok(state === 'result' || m.message, 'no measurement offline');
    if (state === 'result') assert.ok(Number.isFinite(m.height_cm) && Number.isFinite(m.weight_kg));
    assert.equal(server.requests.length, served, 'the stopped server was reached');
    assert.deepEqual(foreignRequests(browser.requests, origin), []);
  } finally {
    await browser.close();
  }
});
