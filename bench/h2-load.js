#!/usr/bin/env node
/*
 * HTTP/2 keep-alive load generator for bench/bench.js (wrk speaks only HTTP/1.1).
 *
 *   node bench/h2-load.js URL --sessions S --streams N --duration SECONDS
 *
 * Opens S sessions to URL (https, certificate not verified, as wrk does not verify either) and
 * keeps N GET streams in flight, spread evenly over the sessions, each sending its next request
 * as soon as its response has ended, for SECONDS. Prints one line
 * "H2JSON {requests, duration_us, bytes, errors, p50_us, p99_us}" as wrk-report.lua does; a
 * non-2xx answer or a stream error counts as an error. Exits 0 unless no session could connect.
 */
'use strict';

const http2 = require('node:http2');

// An IP address as SNI is deprecated (DEP0123), but is what the server selects its certificate by.
process.noDeprecation = true;
const { createHistogram } = require('node:perf_hooks');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const n = Number(process.argv[i + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}

const url = new URL(process.argv[2] ?? '');
const sessionCount = arg('sessions', 4);
const streamCount = arg('streams', 50);
const durationMs = arg('duration', 5) * 1000;
const path = url.pathname + url.search;

const latency = createHistogram();
let requests = 0;
let bytes = 0;
let errors = 0;
let running = true;
let inFlight = 0;
let startedAt = 0n;

function connect() {
  return new Promise((resolve, reject) => {
    // The host name as SNI, as wrk sends it, even when it is an IP address (the bench's certificate is for 127.0.0.1).
    const session = http2.connect(url.origin, { rejectUnauthorized: false, servername: url.hostname, settings: { enablePush: false } });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** One stream after the other on `session`, until the run ends. */
function next(session) {
  if (!running || session.closed || session.destroyed) {
    if (--inFlight === 0) finish(sessions);
    return;
  }
  const sentAt = process.hrtime.bigint();
  let status = 0;
  const stream = session.request({ ':path': path });
  stream.on('response', (headers) => { status = headers[':status']; });
  stream.on('data', (chunk) => { bytes += chunk.length; });
  stream.on('error', () => {});
  stream.on('close', () => {
    if (status >= 200 && status < 300 && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) {
      requests++;
      latency.record(Number(process.hrtime.bigint() - sentAt) || 1);
    } else {
      errors++;
    }
    next(session);
  });
}

let sessions = [];
function finish(all) {
  const durationUs = Number(process.hrtime.bigint() - startedAt) / 1000;
  for (const session of all) session.close();
  const us = (p) => Math.round(latency.percentile(p) / 1000);
  process.stdout.write(`H2JSON ${JSON.stringify({
    requests, duration_us: Math.round(durationUs), bytes, errors,
    p50_us: requests ? us(50) : 0, p99_us: requests ? us(99) : 0,
  })}\n`);
}

async function main() {
  sessions = await Promise.all(Array.from({ length: sessionCount }, connect));
  for (const session of sessions) session.on('error', () => { errors++; });
  startedAt = process.hrtime.bigint();
  setTimeout(() => { running = false; }, durationMs);
  for (let i = 0; i < streamCount; i++) {
    inFlight++;
    next(sessions[i % sessionCount]);
  }
}

main().catch((err) => {
  process.stderr.write(`h2-load: ${err.message}\n`);
  process.exit(1);
});
