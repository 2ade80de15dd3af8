// Results stay on the phone, in IndexedDB: { id, date (ISO), label, height_cm, weight_kg,
// spreads, frames_used, frames_seen, source, model }.
const DB = 'neometer', STORE = 'results';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const result = fn(t.objectStore(STORE));
    t.oncomplete = () => { db.close(); resolve(result.result ?? result); };
    t.onerror = () => { db.close(); reject(t.error); };
  });
}

export const saveResult = (r) => tx('readwrite', (s) => s.add(r));
export const listResults = async () => (await tx('readonly', (s) => s.getAll())).sort((a, b) => b.date.localeCompare(a.date));
export const deleteResult = (id) => tx('readwrite', (s) => s.delete(id));
export const clearResults = () => tx('readwrite', (s) => s.clear());

const CSV_COLUMNS = ['date', 'label', 'height_cm', 'height_spread_cm', 'weight_kg', 'weight_spread_kg',
  'frames_used', 'frames_seen', 'source', 'model'];

function csvCell(v) {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : String(v);
  // Quote when needed; a leading =+-@ is prefixed so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@]/.test(s) && typeof v !== 'number' ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(rows) {
  return [CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((c) => csvCell(r[c])).join(','))].join('\r\n') + '\r\n';
}
