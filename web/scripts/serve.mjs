// A small static server for the built app (tests and the benchmark): dist/ at /, extra
// folders mounted under prefixes (e.g. /golden/ -> ../tests/golden), every request logged.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.webmanifest': 'application/manifest+json', '.wasm': 'application/wasm', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.svg': 'image/svg+xml', '.tflite': 'application/octet-stream', '.bin': 'application/octet-stream',
  '.mp4': 'video/mp4', '.webm': 'video/webm', '.y4m': 'application/octet-stream', '.csv': 'text/csv' };

/** root: folder served at /; mounts: { '/prefix/': folder }. -> { url, requests, close() } */
export function serve({ root, mounts = {}, port = 0, host = '127.0.0.1' } = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push({ method: req.method, path: url.pathname, search: url.search });
    let file = null;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (url.pathname.startsWith(prefix)) file = path.join(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
    }
    if (!file) file = path.join(root, decodeURIComponent(url.pathname));
    if (file.endsWith(path.sep) || url.pathname === '/') file = path.join(file, 'index.html');
    const base = Object.values(mounts).concat(root).map((d) => path.resolve(d));
    if (!base.some((d) => path.resolve(file).startsWith(d)) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-cache',
      'content-length': fs.statSync(file).size });
    if (req.method === 'HEAD') res.end(); else fs.createReadStream(file).pipe(res);
  });
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      resolve({
        url: `http://${host === '127.0.0.1' ? 'localhost' : host}:${server.address().port}/`,
        requests,
        // Cut the network for real: stop listening and drop open keep-alive connections.
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
      });
    });
  });
}
