#!/usr/bin/env node
// Upstream app for `npm run bench` (same semantics as the shared perf-anchor kit's upstream.js):
//   GET /          -> 200, exactly 100-byte text/plain body
//   GET /up        -> 200 "ok\n" (mproxy's default health check path)
//   GET /big?kb=N  -> 200, N KiB body (default 64, max 65536; buffers cached)
//   anything else  -> 404
// node bench/upstream.js [--port 0] [--host 127.0.0.1]; prints "READY <port>" once listening.
'use strict';

const http = require('node:http');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}

const SMALL = Buffer.from('Hello from the mproxy bench upstream. This body is padded to exactly 100 bytes'.padEnd(99, '.') + '\n');
if (SMALL.length !== 100) throw new Error(`small body is ${SMALL.length} bytes`);
const OK = Buffer.from('ok\n');
const NOT_FOUND = Buffer.from('not found\n');
const bigCache = new Map();

function bigBody(kb) {
  let b = bigCache.get(kb);
  if (!b) {
    b = Buffer.alloc(kb * 1024, 'x');
    bigCache.set(kb, b);
  }
  return b;
}

function send(res, status, body, type) {
  res.writeHead(status, { 'content-type': type, 'content-length': body.length });
  res.end(body);
}

function kbParam(url) {
  const q = url.indexOf('?');
  if (q < 0) return 64;
  const n = Number.parseInt(new URLSearchParams(url.slice(q + 1)).get('kb') ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, 65536) : 64;
}

const server = http.createServer((req, res) => {
  const url = req.url || '/';
  const path = url.split('?', 1)[0];
  if (path === '/') return send(res, 200, SMALL, 'text/plain');
  if (path === '/up') return send(res, 200, OK, 'text/plain');
  if (path === '/big') return send(res, 200, bigBody(kbParam(url)), 'application/octet-stream');
  send(res, 404, NOT_FOUND, 'text/plain');
});
// Longer than mproxy's upstream pool idle timeout: the proxy decides when to drop connections.
server.keepAliveTimeout = 75_000;
server.headersTimeout = 80_000;

server.listen(Number(arg('port', 0)), arg('host', '127.0.0.1'), () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
