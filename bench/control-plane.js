#!/usr/bin/env node
/*
 * Control-plane benchmark: `npm run bench:control` (= `npm run build && node bench/control-plane.js`).
 *
 * Does the primary keep its event loop free while it deploys? Starts a fresh
 * `mproxy run --workers 2 --http-port 0 --https-port 0` on a temporary state dir, two upstreams
 * per service (A and B, in this process: `/up` answers 200 at once, anything else after SLOW_MS)
 * and a stand-in ACME CA that resets every connection. Then it runs DEPLOYS `mproxy deploy`
 * commands, one after the other, over SERVICES services taken in turn:
 *   - every deploy gives its service two new host names, with `--ssl`: the primary makes a
 *     self-signed stand-in for each new host, orders a certificate for it (which fails: the CA
 *     cannot be reached; it retries after ACME_RETRY) and stops managing the old ones (the churn);
 *   - the service's target alternates between its A and B, so every deploy of a live service
 *     health-checks, switches and drains the other one; CLIENTS keep-alive clients keep requests
 *     of SLOW_MS in flight through the proxy meanwhile, on every service in turn, so each drain
 *     has some to wait for;
 *   - every REMOVE_EVERY-th deploy is preceded by an `mproxy remove` of that service, so it is
 *     created anew (no drain) instead of switched.
 * At the end it reads `mproxy status --json` and prints how late the primary's event loop ran (p50,
 * p99, max since it started, start-up included; the same figures for start-up alone), the
 * deploys and removes, and deploy durations: as the primary logged them (`deploy finished`) and
 * as the CLI took them (process start to exit, oclif's start-up included).
 *
 * A loop that runs late has either been busy or been waiting for a CPU. To tell them apart, it
 * also prints the same figures for an idle Node process started beside the primary
 * (bench/loop-probe.js); from /proc, how long the primary's main thread ran and how long it
 * waited for a CPU while runnable; and, from bench/stall-monitor.js (preloaded into the primary),
 * its longest synchronous stretch (main-thread CPU between two 2 ms ticks), how many times its
 * loop ran more than 20 ms late, and how many of those it spent more than 20 ms of CPU on: its
 * own stalls, the ones the requirement is about. On a busy machine (the load average is printed)
 * the maximum delay is mostly the machine's; PRIORITY=-10 runs the proxy and the probe at that
 * nice level.
 *
 * Env knobs: DEPLOYS=100  SERVICES=4  REMOVE_EVERY=10 (0: none)  WORKERS=2  CLIENTS=4
 *   SLOW_MS=20  ACME_RETRY=1s  CPU_PROF=dir (profile the primary and workers with --cpu-prof; the
 *   profiles are written there when the proxy stops)  NODE_FLAGS="--trace-gc ..." (more flags for
 *   the proxy's node)  KEEP=1 (keep the temporary dir and its log)  TLS=0 (the same deploys without
 *   --ssl: no certificates at all, to tell what the churn costs from what the machine does anyway)
 *   PRIORITY=0 (nice level of the proxy and the probe; below 0 needs root).
 * Every process it starts is stopped by pid at the end, on error and on SIGINT.
 */
'use strict';

const { execFile, fork, spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BIN = path.join(__dirname, '..', 'bin', 'run.js');
const num = (name, dflt, min = 0) => {
  const value = process.env[name];
  if (value === undefined || value === '') return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer of at least ${min}, got "${value}"`);
  return n;
};
const cfg = {
  deploys: num('DEPLOYS', 100),
  services: Math.max(1, num('SERVICES', 4)),
  removeEvery: num('REMOVE_EVERY', 10),
  workers: num('WORKERS', 2),
  clients: num('CLIENTS', 4),
  slowMs: num('SLOW_MS', 20),
  acmeRetry: process.env.ACME_RETRY || '1s',
  cpuProf: process.env.CPU_PROF ? path.resolve(process.env.CPU_PROF) : '',
  nodeFlags: (process.env.NODE_FLAGS || '').split(' ').filter(Boolean),
  keep: process.env.KEEP === '1',
  tls: process.env.TLS !== '0',
  priority: num('PRIORITY', 0, -20),
};
/** How long the proxy may take to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 15_000;
/** Bounds one CLI command, so a stuck deploy fails the run instead of hanging it. */
const CLI_TIMEOUT_MS = 60_000;
const HEALTH_FLAGS = ['--health-check-interval', '100ms', '--health-check-timeout', '1s'];
/** The primary's sampling resolution (EVENT_LOOP_DELAY_RESOLUTION_MS), for the probe. */
const RESOLUTION_MS = 2;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (msg) => process.stderr.write(`[control ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ------------------------------------------------------------------ what this run started

let tmpDir = '';
let proxy; // { child, exited: Promise, workerPids: number[] }
let probe; // the idle reference process (loop-probe.js)
const servers = [];
let clientsRunning = false;

function startUpstream(name) {
  const server = http.createServer((req, res) => {
    if (req.url === '/up') return res.end('ok\n');
    setTimeout(() => res.end(`${name}\n`), cfg.slowMs);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${server.address().port}`)));
}

/** A CA that cannot be reached: every connection is reset, so every order fails at once. */
function startDeadCa() {
  const server = net.createServer((socket) => socket.resetAndDestroy());
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`https://127.0.0.1:${server.address().port}/directory`)));
}

/** This environment without the MPROXY_* and port variables of the developer's shell. */
function cleanEnv(extra = {}) {
  const env = { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true' };
  for (const key of Object.keys(env)) if (/^(MPROXY_|HTTPS?_PORT$)/.test(key)) delete env[key];
  return { ...env, ...extra };
}

async function startProxy(stateDir, logFile, stallsFile, caUrl) {
  const env = cleanEnv({ MPROXY_ACME_RETRY_BASE: cfg.acmeRetry, MPROXY_BENCH_STALLS: stallsFile });
  const nodeFlags = ['--require', path.join(__dirname, 'stall-monitor.js'), ...cfg.nodeFlags,
    ...(cfg.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cfg.cpuProf] : [])];
  const out = fs.openSync(logFile, 'a');
  // Logs go to a file, as in production: a pipe this process is slow to read would hold the proxy.
  const [command, args] = niced(process.execPath, [...nodeFlags, BIN, 'run', '--state-dir', stateDir, '--http-port', '0', '--https-port', '0',
    '--workers', String(cfg.workers), '--acme-directory', caUrl, '--access-log', 'false']);
  const child = spawn(command, args, { stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  proxy = { child, exited, workerPids: [] };
  const until = Date.now() + 30_000;
  for (;;) {
    const listening = readLog(logFile).find((line) => line.msg === 'listening');
    if (listening) return { httpPort: listening.http, httpsPort: listening.https };
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mproxy run exited early:\n${tail(logFile)}`);
    if (Date.now() > until) throw new Error(`mproxy run did not log "listening" within 30 s:\n${tail(logFile)}`);
    await sleep(50);
  }
}

/** `nice -n PRIORITY` keeps the pid: the proxy's pid is the child's. */
function niced(command, args) {
  return cfg.priority === 0 ? [command, args] : ['nice', ['-n', String(cfg.priority), command, ...args]];
}

/** The idle reference: forked through `nice` too when PRIORITY is set, so it competes alike. */
function startProbe() {
  const script = path.join(__dirname, 'loop-probe.js');
  const child = cfg.priority === 0
    ? fork(script, [String(RESOLUTION_MS)])
    : spawn('nice', ['-n', String(cfg.priority), process.execPath, script, String(RESOLUTION_MS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  probe = child;
  return {
    report: () => new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`the loop probe exited (${code}) before it reported`)));
      child.send('report');
    }),
  };
}

/** The main thread's time on a CPU and waiting for one (runnable, not running), in ms. */
function schedstat(pid) {
  try {
    const [runNs, waitNs] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { runMs: runNs / 1e6, waitMs: waitNs / 1e6 };
  } catch {
    return { runMs: NaN, waitMs: NaN };
  }
}

async function stopProxy() {
  if (!proxy || proxy.child.exitCode !== null || proxy.child.signalCode !== null) return;
  proxy.child.kill('SIGTERM');
  const stopped = await Promise.race([proxy.exited.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
  if (!stopped) {
    log(`mproxy (pid ${proxy.child.pid}) still running ${STOP_TIMEOUT_MS} ms after SIGTERM: killing it and its workers`);
    for (const pid of [proxy.child.pid, ...proxy.workerPids]) try { process.kill(pid, 'SIGKILL'); } catch {}
  }
}

async function stopAll() {
  clientsRunning = false;
  if (probe && probe.exitCode === null && probe.signalCode === null) probe.kill('SIGKILL');
  await stopProxy();
  await Promise.all(servers.map((server) => new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  })));
  if (tmpDir && !cfg.keep) fs.rmSync(tmpDir, { recursive: true, force: true });
  else if (tmpDir) log(`kept ${tmpDir}`);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: stopping everything`);
    stopAll().finally(() => process.exit(130));
  });
}

// ------------------------------------------------------------------ CLI, logs, traffic

/** Runs `mproxy <args> --state-dir DIR`; resolves with its stdout and wall time, rejects unless it exits 0. */
function cli(stateDir, args) {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args, '--state-dir', stateDir], { env: cleanEnv(), timeout: CLI_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`mproxy ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
        else resolve({ stdout, ms: Number(process.hrtime.bigint() - started) / 1e6 });
      });
  });
}

function readLog(file) {
  const lines = [];
  for (const text of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!text.startsWith('{')) continue;
    try { lines.push(JSON.parse(text)); } catch { /* a line still being written */ }
  }
  return lines;
}

function tail(file) {
  return fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
}

/**
 * Keep-alive clients that request `nextHost()` over and over, so every drain has requests of
 * SLOW_MS to wait for. Answers other than 200 are counted, not fatal: a client may hit a host the
 * moment its service is removed.
 */
function runClients(httpPort, nextHost) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.clients });
  const counts = { ok: 0, errors: 0, statuses: {} };
  const one = () => new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: httpPort, path: '/', headers: { host: nextHost() }, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) counts.ok++;
        else counts.statuses[res.statusCode] = (counts.statuses[res.statusCode] ?? 0) + 1;
        resolve();
      });
    });
    req.on('error', () => { counts.errors++; setTimeout(resolve, 10); });
  });
  clientsRunning = true;
  const loops = Array.from({ length: cfg.clients }, async () => { while (clientsRunning) await one(); });
  return { counts, stop: async () => { clientsRunning = false; await Promise.all(loops); agent.destroy(); } };
}

// ------------------------------------------------------------------ numbers

/** Nearest-rank percentile of unsorted numbers. */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const ms = (n) => (Number.isFinite(n) ? `${n.toFixed(1)} ms` : '-');

function delayLine(label, delay) {
  return `${label.padEnd(34)} p50 ${ms(delay.p50Ms).padStart(8)}   p99 ${ms(delay.p99Ms).padStart(8)}   max ${ms(delay.maxMs).padStart(8)}`;
}

function durationLine(label, values) {
  return `${label.padEnd(34)} p50 ${ms(percentile(values, 50)).padStart(8)}   p99 ${ms(percentile(values, 99)).padStart(8)}   max ${ms(Math.max(...values)).padStart(8)}`;
}

function describeTraffic(counts) {
  if (!counts) return 'none';
  const others = Object.entries(counts.statuses).map(([status, n]) => `, ${n} ${status}`).join('');
  // A 404 is a request for the host name a deploy has just replaced, sent before the deploy returned.
  return `${counts.ok} requests 200${others}, ${counts.errors} errors`;
}

// ------------------------------------------------------------------ main

async function main() {
  if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'commands', 'run.js'))) throw new Error('dist/ missing: run `npm run build` first (npm run bench:control does)');
  const loadStart = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  log(`load average ${loadStart}; ${cfg.deploys} deploys over ${cfg.services} services, ${cfg.workers} workers, ${os.cpus().length} CPUs`);
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mproxy-control-bench-'));
  const stateDir = path.join(tmpDir, 'state');
  const logFile = path.join(tmpDir, 'mproxy.log');
  const stallsFile = path.join(tmpDir, 'stalls.json');
  if (cfg.cpuProf) fs.mkdirSync(cfg.cpuProf, { recursive: true });

  const upstreams = [];
  for (let i = 0; i < cfg.services; i++) upstreams.push([await startUpstream(`svc${i}-A`), await startUpstream(`svc${i}-B`)]);
  const caUrl = await startDeadCa();
  const loopProbe = startProbe();
  const { httpPort, httpsPort } = await startProxy(stateDir, logFile, stallsFile, caUrl);
  const initial = JSON.parse((await cli(stateDir, ['status', '--json'])).stdout);
  proxy.workerPids = initial.workerPids;
  if (!initial.eventLoopDelay) throw new Error('status --json has no eventLoopDelay: is dist/ built from this tree?');
  log(`mproxy pid ${initial.pid}, workers ${initial.workerPids.join(', ')}, http ${httpPort}, https ${httpsPort}, CA ${caUrl}`);
  const schedStart = schedstat(initial.pid);

  const hostOf = new Map(); // service -> its first host now
  let turn = 0;
  let clients;
  const live = new Map(); // service -> index of its current upstream
  const cliDeployMs = [];
  let removes = 0;
  const started = Date.now();
  for (let i = 0; i < cfg.deploys; i++) {
    const index = i % cfg.services;
    const service = `svc${index}`;
    if (cfg.removeEvery > 0 && i > 0 && i % cfg.removeEvery === 0 && live.has(service)) {
      await cli(stateDir, ['remove', service, '--quiet']);
      live.delete(service);
      hostOf.delete(service);
      removes++;
    }
    const upstream = live.has(service) ? 1 - live.get(service) : i % 2;
    const hosts = [`${service}-d${i}.bench.test`, `www.${service}-d${i}.bench.test`];
    const tlsFlags = cfg.tls ? ['--ssl', '--tls-redirect=false'] : [];
    const { ms: took } = await cli(stateDir, ['deploy', upstreams[index][upstream], '--name', service, '--host', hosts.join(','), ...tlsFlags,
      ...HEALTH_FLAGS, '--quiet']);
    live.set(service, upstream);
    hostOf.set(service, hosts[0]);
    clients ??= runClients(httpPort, () => [...hostOf.values()][turn++ % hostOf.size]);
    cliDeployMs.push(took);
    if ((i + 1) % 10 === 0) log(`${i + 1}/${cfg.deploys} deploys (${removes} removes), last took ${took.toFixed(0)} ms`);
  }
  const elapsedS = (Date.now() - started) / 1000;
  await clients?.stop();

  const status = JSON.parse((await cli(stateDir, ['status', '--json'])).stdout);
  const schedEnd = schedstat(status.pid);
  const idle = await loopProbe.report();
  // The stall monitor writes its findings as the primary exits.
  await stopProxy();
  const stalls = fs.existsSync(stallsFile)
    ? JSON.parse(fs.readFileSync(stallsFile, 'utf8'))
    : { longestCpuMs: NaN, stalls: NaN, ownStalls: NaN, longestLateMs: NaN, longestOwnCpuMs: NaN, longestOwn: [] }; // killed before it could write
  const lines = readLog(logFile);
  const primaryDeployMs = lines.filter((line) => line.msg === 'deploy finished').map((line) => line.durationMs);
  const orders = lines.filter((line) => line.msg === 'certificate order started').length;
  const failed = lines.filter((line) => line.msg === 'certificate order failed').length;
  const loadEnd = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

  const out = [
    '',
    `mproxy control plane: ${cfg.deploys} deploys (${cfg.tls ? '--ssl' : 'no TLS'}, 2 new hosts each), ${removes} removes, ${cfg.services} services, ` +
      `${cfg.workers} workers, ${elapsedS.toFixed(1)} s; Node ${process.version}, ${os.cpus().length} CPUs, load ${loadStart} -> ${loadEnd}`,
    `certificate churn: ${orders} orders started, ${failed} failed (CA unreachable, stand-ins served meanwhile); ` +
      `traffic: ${describeTraffic(clients?.counts)}`,
    `primary main thread during the deploys: ${(schedEnd.runMs - schedStart.runMs).toFixed(0)} ms on a CPU, ` +
      `${(schedEnd.waitMs - schedStart.waitMs).toFixed(0)} ms runnable but waiting for one${cfg.priority ? ` (nice ${cfg.priority})` : ''}`,
    '',
    delayLine('event loop delay, primary', status.eventLoopDelay),
    delayLine('  start-up only', initial.eventLoopDelay),
    delayLine('  idle process beside it', idle),
    durationLine(`deploy, primary (${primaryDeployMs.length})`, primaryDeployMs),
    durationLine(`deploy, CLI wall time (${cliDeployMs.length})`, cliDeployMs),
    '',
    `longest synchronous stretch of the primary (its main thread's CPU between two 2 ms ticks): ${stalls.longestCpuMs.toFixed(1)} ms at ${stalls.longestCpuAt}`,
    `primary loop more than 20 ms late: ${stalls.stalls} times (longest ${stalls.longestLateMs.toFixed(1)} ms); ` +
      `with more than 20 ms of its own CPU meanwhile: ${stalls.ownStalls}` +
      (stalls.ownStalls > 0 ? ` (most CPU ${stalls.longestOwnCpuMs.toFixed(1)} ms: ${JSON.stringify(stalls.longestOwn)})` : ''),
    status.eventLoopDelay.maxMs <= 20
      ? 'the primary never ran more than 20 ms late'
      : `the primary ran ${status.eventLoopDelay.maxMs} ms late at worst, more than 20 ms; an idle process beside it, ${idle.maxMs} ms; ` +
        (stalls.ownStalls === 0 ? 'none of it was the primary\'s own work' : `${stalls.ownStalls} of its stalls were its own work`),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

main()
  .then(() => stopAll())
  .then(() => process.exit(0))
  .catch(async (err) => {
    process.stderr.write(`${err.stack || err}\n`);
    if (tmpDir && fs.existsSync(path.join(tmpDir, 'mproxy.log'))) process.stderr.write(`last log lines:\n${tail(path.join(tmpDir, 'mproxy.log'))}\n`);
    await stopAll();
    process.exit(1);
  });
