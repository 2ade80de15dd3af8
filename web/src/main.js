// The nurse's app: measure (camera, photo or video) -> result -> saved on the phone.
import { setLanguage, pickLanguage, language, t, LANGS } from './i18n.js';
import { loadPipeline, grabRgba, measureFrame } from './pipeline.js';
import { aggregate, tiltFromOrientation } from './gates.js';
import { saveResult, listResults, deleteResult, clearResults, toCsv } from './store.js';
import * as preprocess from './preprocess.js';
import * as gates from './gates.js';
import { Runner, initLiteRt, segmenterMask } from './model.js';
import { runBench } from './bench.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// Sampling: how many frames over how many seconds (a URL may shorten it, e.g. for tests).
const SAMPLE_FRAMES = Number(params.get('frames')) || 12;
const SAMPLE_SECONDS = Number(params.get('seconds')) || 3;

const app = {
  state: 'loading', pipeline: null, lastMeasurement: null, lastFrames: [], tilt: null, cancel: false,
  preprocess, gates, Runner, initLiteRt, decodeImage, loadPipeline, measureFrame, toCsv, listResults, saveResult, deleteResult, segmenterMask,
  home: () => { show('home'); setState('ready', 'model_ready'); },
};
window.neometer = app;

function show(screen) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== screen;
}

function setState(state, statusKey, vars) {
  app.state = state;
  document.body.dataset.state = state;
  if (statusKey) $('status').textContent = t(statusKey, vars);
}

// --- orientation: the camera tilt gate, where the phone reports it ------------------------
function listenOrientation() {
  window.addEventListener('deviceorientation', (e) => {
    if (e.beta === null || e.gamma === null) return;
    app.tilt = tiltFromOrientation(e.beta, e.gamma);
  });
}

async function askOrientationPermission() {
  // iOS asks on a user gesture; elsewhere the events just arrive (or never, on a desktop).
  const DOE = window.DeviceOrientationEvent;
  if (DOE && typeof DOE.requestPermission === 'function') {
    try { await DOE.requestPermission(); } catch { /* denied: no tilt gate */ }
  }
}

// --- sources: each yields RGBA frames ----------------------------------------------------
async function decodeImage(blobOrUrl) {
  const blob = typeof blobOrUrl === 'string' ? await (await fetch(blobOrUrl)).blob() : blobOrUrl;
  const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  const rgba = grabRgba(bmp, bmp.width, bmp.height);
  const out = { rgba, w: bmp.width, h: bmp.height };
  bmp.close();
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const once = (el, ev) => new Promise((resolve, reject) => {
  el.addEventListener(ev, resolve, { once: true });
  el.addEventListener('error', () => reject(el.error || new Error(ev)), { once: true });
});

async function* cameraFrames(video) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
  try {
    video.srcObject = stream;
    await video.play();
    while (!video.videoWidth) await sleep(30);
    const interval = (SAMPLE_SECONDS * 1000) / SAMPLE_FRAMES;
    for (let i = 0; i < SAMPLE_FRAMES && !app.cancel; i++) {
      const started = performance.now();
      yield { rgba: grabRgba(video, video.videoWidth, video.videoHeight), w: video.videoWidth, h: video.videoHeight, tilt: app.tilt };
      await sleep(Math.max(0, interval - (performance.now() - started)));
    }
  } finally {
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  }
}

async function* videoFileFrames(video, file) {
  const url = URL.createObjectURL(file);
  try {
    video.muted = true;
    video.src = url;
    await once(video, 'loadeddata');
    const duration = Number.isFinite(video.duration) ? video.duration : SAMPLE_SECONDS;
    for (let i = 0; i < SAMPLE_FRAMES && !app.cancel; i++) {
      video.currentTime = ((i + 0.5) * duration) / SAMPLE_FRAMES;
      await once(video, 'seeked');
      yield { rgba: grabRgba(video, video.videoWidth, video.videoHeight), w: video.videoWidth, h: video.videoHeight, tilt: null };
    }
  } finally {
    video.removeAttribute('src');
    URL.revokeObjectURL(url);
  }
}

// --- the measurement ---------------------------------------------------------------------
async function measure(frames, nExpected, source, { still = false } = {}) {
  app.cancel = false;
  app.lastFrames = [];
  show('measure');
  setState('measuring', 'measuring');
  $('progress').textContent = '';
  for await (const f of frames) {
    const r = await measureFrame(app.pipeline, f.rgba, f.w, f.h, f.tilt);
    app.lastFrames.push(r);
    $('progress').textContent = t('frame_progress', { i: app.lastFrames.length, n: nExpected });
  }
  // A still photo is one frame: the per-frame gates apply, the frame count does not.
  const q = still ? { ...app.pipeline.quality, min_good_frames: 1 } : app.pipeline.quality;
  const m = aggregate(app.lastFrames.map((f) => f.prediction), app.lastFrames.map((f) => f.check), q);
  app.lastMeasurement = m;
  await showResult(m, source);
}

async function showResult(m, source) {
  show('result');
  const ok = m.message === null;
  $('result-numbers').hidden = !ok;
  $('result-message').hidden = ok;
  $('saved').hidden = true;
  if (ok) {
    $('length-value').textContent = m.height_cm.toFixed(1);
    $('length-spread').textContent = `± ${m.height_spread_cm.toFixed(1)} cm`;
    $('weight-value').textContent = m.weight_kg.toFixed(2);
    $('weight-spread').textContent = `± ${m.weight_spread_kg.toFixed(2)} kg`;
    $('frames-used').textContent = t('frames_used', { used: m.frames_used, seen: m.frames_seen });
    await saveResult({ date: new Date().toISOString(), label: $('label').value.trim(), ...m, source,
      model: app.pipeline.manifest.regressor });
    $('saved').hidden = false;
    setState('result');
  } else {
    $('result-message').dataset.key = m.message;
    $('result-message').textContent = t(m.message);
    $('frames-used-fail').textContent = t('frames_used', { used: m.frames_used, seen: m.frames_seen });
    setState('failed');
  }
}

async function startCamera() {
  await askOrientationPermission();
  try {
    await measure(cameraFrames($('preview')), SAMPLE_FRAMES, 'camera');
  } catch (err) {
    failWith('camera_error', err);
  }
}

async function useFile(file) {
  try {
    if (file.type.startsWith('video/')) {
      await measure(videoFileFrames($('preview'), file), SAMPLE_FRAMES, 'video');
    } else {
      const img = await decodeImage(file);
      await measure((async function* () { yield { ...img, tilt: null }; })(), 1, 'photo', { still: true });
    }
  } catch (err) {
    failWith('file_error', err);
  }
}

function failWith(key, err) {
  show('result');
  $('result-numbers').hidden = true;
  $('result-message').hidden = false;
  $('result-message').dataset.key = key;
  $('result-message').textContent = t(key, { error: err?.message || String(err) });
  $('frames-used-fail').textContent = '';
  setState('failed');
}

// --- saved results -----------------------------------------------------------------------
async function showHistory() {
  show('history');
  const rows = await listResults();
  const list = $('history-list');
  list.replaceChildren();
  $('history-empty').hidden = rows.length > 0;
  for (const r of rows) {
    const li = document.createElement('li');
    const text = document.createElement('div');
    text.className = 'entry';
    const when = new Date(r.date).toLocaleString(language());
    text.innerHTML = '<b></b><span></span><small></small>';
    text.children[0].textContent = `${r.height_cm.toFixed(1)} cm · ${r.weight_kg.toFixed(2)} kg`;
    text.children[1].textContent = r.label || '—';
    text.children[2].textContent = `${when} · ${t('frames_used', { used: r.frames_used, seen: r.frames_seen })}`;
    const del = document.createElement('button');
    del.className = 'secondary';
    del.textContent = t('delete');
    del.onclick = async () => { await deleteResult(r.id); await showHistory(); };
    li.append(text, del);
    list.append(li);
  }
}

async function exportCsv() {
  const blob = new Blob([toCsv(await listResults())], { type: 'text/csv' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `neometer-${new Date().toISOString().slice(0, 10)}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// --- start-up ----------------------------------------------------------------------------
function wireUi() {
  $('lang-toggle').onclick = () => setLanguage(language() === 'en' ? 'zh-CN' : 'en');
  $('start-camera').onclick = startCamera;
  $('pick-file').onclick = () => $('file-input').click();
  $('file-input').onchange = (e) => { const f = e.target.files[0]; e.target.value = ''; if (f) useFile(f); };
  $('stop').onclick = () => { app.cancel = true; };
  $('again').onclick = () => { show('home'); setState('ready', 'model_ready'); };
  $('open-history').onclick = showHistory;
  $('result-history').onclick = showHistory;
  $('history-back').onclick = () => show('home');
  $('export-csv').onclick = exportCsv;
  $('delete-all').onclick = async () => { if (confirm(t('confirm_delete_all'))) { await clearResults(); await showHistory(); } };
}

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('sw.js');
    app.serviceWorkerReady = navigator.serviceWorker.ready;
  } catch (err) {
    console.warn('service worker not registered', err);
  }
}

async function main() {
  let stored = null;
  try { stored = localStorage.getItem('neometer.lang'); } catch { /* private mode */ }
  await setLanguage(params.get('lang') && LANGS.includes(params.get('lang')) ? params.get('lang') : pickLanguage(stored, navigator.language));
  registerServiceWorker();
  if (params.get('bench')) {
    show('bench');
    window.neometerBench = runBench(params);
    return;
  }
  wireUi();
  listenOrientation();
  show('home');
  setState('loading', 'loading_model');
  try {
    app.pipeline = await loadPipeline();
    setState('ready', 'model_ready');
    for (const b of document.querySelectorAll('.needs-model')) b.disabled = false;
  } catch (err) {
    console.error(err);
    setState('error', err.key || 'no_model');
    if (!err.key) $('status').textContent += ` (${err.message})`;
  }
}

main();
