#!/usr/bin/env node
/*
 * mproxy throughput/cost benchmark: `npm run bench` (= `npm run build && node bench/bench.js`).
 *
 * Starts bench/upstream.js (100 B at /, /big?kb=N, /up) and `mproxy run --workers 2 --http-port 0`
 * with a temporary state dir, deploys the upstream, then measures, interleaved over ROUNDS rounds
 * (round -> case -> target, the target order alternating between rounds):
 *   small  GET /            100 B body, keep-alive
 *   big64k GET /big?kb=64   64 KiB body, keep-alive (MB/s)
 *   close  GET /            100 B, `Connection: close` (a new client connection per request)
 * each "direct" (wrk -> upstream) and through mproxy, with wrk (`wrk -t1 -cCONNS -dDURATIONs
 * --latency`) or, when wrk is not on PATH, the autocannon CLI from node_modules, as a separate process.
 * The HTTPS cases (tls, tlsclose) compare mproxy over HTTPS with mproxy over HTTP; h2 compares
 * HTTP/2 (bench/h2-load.js: CONNS streams in flight over H2_SESSIONS sessions) with HTTPS/1.1
 * (wrk, CONNS keep-alive connections), both through mproxy.
 *
 * Per run it reads: CPU ticks (user+kernel) of the mproxy process tree (primary + workers) and of the
 * upstream from /proc/<pid>/stat, the load generator's CPU (reaped children's times of this process),
 * machine-wide /proc/stat (-> "foreign" CPU used by processes that are not ours) and Tcp ActiveOpens
 * from /proc/net/snmp (-> TCP connects per request: ~0 keep-alive; 1.00 for close when mproxy keeps
 * its upstream connections, 2.00 when it does not), and samples the tree's summed RSS every 200 ms.
 * Ratios mproxy/direct are taken per round and their median (min-max) is printed.
 *
 * Env knobs: DURATION=5 (s per run)  CONNS=50  ROUNDS=3  WARMUP=1 (s, before every run; 0 = none)
 *   WORKERS=2  CASES=small,big64k,close,tls,tlsclose,h2  LOADGEN=wrk|autocannon (default: wrk if on PATH)
 *   H2_SESSIONS=10 (HTTP/2 sessions of the h2 case)
 *   MAX_LOAD=0 (if > 0, wait up to LOAD_WAIT_S=120 for the 1-min load average to drop below it)
 *   BENCH_JSON=path (also write the raw numbers as JSON)  ACCESS_LOG=true|false (mproxy's --access-log)
 *   MPROXY_METRICS_PORT=auto (passed on to mproxy: serve metrics, so requests are counted; default off)
 *   DEPLOY_FLAGS="--forward-headers --log-request-header x-a" (extra flags of the service's deploy)
 * Linux only (/proc). Every process it starts is stopped by pid at the end, on error and on SIGINT.
 */
'use strict';

const { spawn, execFileSync, execFile } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'run.js');

const num = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
};

const cfg = {
  duration: num('DURATION', 5),
  conns: num('CONNS', 50),
  rounds: num('ROUNDS', 3),
  warmup: num('WARMUP', 1),
  workers: num('WORKERS', 2),
  maxLoad: num('MAX_LOAD', 0),
  loadWaitS: num('LOAD_WAIT_S', 120),
  h2Sessions: num('H2_SESSIONS', 10),
  cases: (process.env.CASES || 'small,big64k,close,tls,tlsclose,h2').split(',').map((s) => s.trim()).filter(Boolean),
  loadgen: process.env.LOADGEN || (onPath('wrk') ? 'wrk' : 'autocannon'),
  json: process.env.BENCH_JSON || '',
};

const CASES = {
  small: { label: '100 B keep-alive', path: '/', close: false, metric: 'rps' },
  big64k: { label: '64 KiB keep-alive', path: '/big?kb=64', close: false, metric: 'mbps' },
  close: { label: '100 B Connection: close', path: '/', close: true, metric: 'rps' },
  // TLS cases compare mproxy over HTTPS with mproxy over plain HTTP ("direct" column = HTTP).
  tls: { label: '100 B keep-alive, HTTPS vs HTTP', path: '/', close: false, metric: 'rps', tls: true },
  tlsclose: { label: '100 B new connection per request (handshake included), HTTPS vs HTTP', path: '/', close: true, metric: 'rps', tls: true },
  // HTTP/2 through mproxy ("mproxy" column) against HTTPS/1.1 through mproxy ("direct" column).
  h2: { label: '100 B keep-alive, HTTP/2 vs HTTPS/1.1', path: '/', close: false, metric: 'rps', h2: true },
};
for (const c of cfg.cases) if (!CASES[c]) throw new Error(`unknown case "${c}" (known: ${Object.keys(CASES).join(', ')})`);
if (!['wrk', 'autocannon'].includes(cfg.loadgen)) throw new Error(`LOADGEN must be wrk or autocannon, got "${cfg.loadgen}"`);

const HZ = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

function onPath(cmd) {
  return (process.env.PATH || '').split(':').some((dir) => {
    try { fs.accessSync(path.join(dir || '.', cmd), fs.constants.X_OK); return true; } catch { return false; }
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ------------------------------------------------------------------ /proc readers

/** Fields of /proc/<pid>/stat after the command name: [0] = state (field 3). */
function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function ticksOf(pid) {
  const f = readStat(pid);
  return f ? { user: Number(f[11]), sys: Number(f[12]), start: f[19] } : null;
}

/** pid and all its descendants (children of children...). */
function treeOf(root) {
  const children = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = readStat(name);
    if (!f) continue;
    const ppid = Number(f[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift();
    if (!readStat(p)) continue;
    out.push(p);
    queue.push(...(children.get(p) || []));
  }
  return out;
}

function procKb(pid, file, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/${file}`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const rssKb = (pids) => pids.reduce((sum, p) => sum + procKb(p, 'status', 'VmRSS'), 0);
const pssKb = (pids) => pids.reduce((sum, p) => sum + procKb(p, 'smaps_rollup', 'Pss'), 0);

function machineTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: idle + iowait, busy: user + nice + system + irq + softirq, steal };
}

function activeOpens() {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'));
  const keys = lines[0].split(/\s+/);
  const vals = lines[1].split(/\s+/);
  return Number(vals[keys.indexOf('ActiveOpens')]);
}

/** CPU (ticks) of this process's reaped children: the load generator of the last run. */
function reapedChildTicks() {
  const f = readStat(process.pid);
  return Number(f[13]) + Number(f[14]);
}

// ------------------------------------------------------------------ process management

const started = []; // { name, child, tree() }
let currentLoadgen = null;
let cleaning = null;

function spawnTracked(name, cmd, args, opts) {
  const child = spawn(cmd, args, opts);
  const entry = { name, child, exited: false, treePids: [child.pid] };
  child.on('exit', () => { entry.exited = true; });
  started.push(entry);
  return entry;
}

async function stopAll() {
  if (cleaning) return cleaning;
  cleaning = (async () => {
    if (currentLoadgen && currentLoadgen.exitCode === null) try { currentLoadgen.kill('SIGKILL'); } catch {}
    // Remember the whole tree (mproxy workers) before the primary goes away.
    for (const e of started) {
      if (!e.exited) {
        const start = ticksOf(e.child.pid)?.start;
        e.treePids = treeOf(e.child.pid).map((pid) => ({ pid, start: ticksOf(pid)?.start }));
        e.rootStart = start;
      }
    }
    for (const e of [...started].reverse()) {
      if (!e.exited) try { process.kill(e.child.pid, 'SIGTERM'); } catch {}
    }
    const until = Date.now() + 8000;
    const alive = () => started.flatMap((e) => e.treePids.filter((p) => p.pid && ticksOf(p.pid)?.start === p.start));
    while (alive().length && Date.now() < until) await sleep(100);
    for (const p of alive()) {
      log(`pid ${p.pid} still running after SIGTERM, sending SIGKILL`);
      try { process.kill(p.pid, 'SIGKILL'); } catch {}
    }
  })();
  return cleaning;
}

// Last resort if something calls process.exit: no orphans left behind.
process.on('exit', () => {
  for (const e of started) {
    const pids = Array.isArray(e.treePids) ? e.treePids : [];
    for (const p of pids) {
      const pid = typeof p === 'number' ? p : p.pid;
      try { if (readStat(pid)) process.kill(pid, 'SIGKILL'); } catch {}
    }
    if (!e.exited) try { process.kill(e.child.pid, 'SIGKILL'); } catch {}
  }
});

let tmpDir = '';
function removeTmp() {
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    log(`${sig}: stopping everything`);
    stopAll().finally(() => { removeTmp(); process.exit(130); });
  });
}

function waitForLine(child, re, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: not ready after ${timeoutMs} ms: ${buf.slice(-500)}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(re);
      if (m) { clearTimeout(timer); resolve(m); }
    });
    child.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`${what} exited early (${code ?? sig}): ${buf.slice(-500)}`)); });
  });
}

async function waitForFileLine(file, re, entry, what, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const m = text.match(re);
    if (m) return m;
    if (entry.exited) throw new Error(`${what} exited early: ${text.slice(-1500)}`);
    if (Date.now() > until) throw new Error(`${what}: not ready after ${timeoutMs} ms: ${text.slice(-1500)}`);
    await sleep(100);
  }
}

function runCli(args, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`mproxy ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

function httpGet(port, p, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers, agent: false, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p} on ${port}: timeout`)));
    req.on('error', reject);
  });
}

/** A self-signed certificate for an IP address, as files (wrk does not verify certificates). */
function writeSelfSigned(dir, ip) {
  const forge = require('node-forge');
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60000);
  cert.validity.notAfter = new Date(Date.now() + 86400000);
  cert.setSubject([{ name: 'commonName', value: ip }]);
  cert.setIssuer([{ name: 'commonName', value: ip }]);
  cert.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 7, ip }] }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const certFile = path.join(dir, 'bench-cert.pem');
  const keyFile = path.join(dir, 'bench-key.pem');
  fs.writeFileSync(certFile, forge.pki.certificateToPem(cert));
  fs.writeFileSync(keyFile, forge.pki.privateKeyToPem(keys.privateKey));
  return { certFile, keyFile };
}

// ------------------------------------------------------------------ load generators

function runLoadgen(url, close, seconds, h2 = false) {
  let cmd;
  let args;
  if (h2) {
    cmd = process.execPath;
    args = [path.join(__dirname, 'h2-load.js'), url, '--sessions', String(cfg.h2Sessions), '--streams', String(cfg.conns), '--duration', String(seconds)];
  } else if (cfg.loadgen === 'wrk') {
    cmd = 'wrk';
    args = ['-t1', `-c${cfg.conns}`, `-d${seconds}s`, '--latency', '-s', path.join(__dirname, 'wrk-report.lua')];
    if (close) args.push('-H', 'Connection: close');
    args.push(url);
  } else {
    cmd = path.join(ROOT, 'node_modules', '.bin', 'autocannon');
    args = ['-c', String(cfg.conns), '-d', String(seconds), '--json'];
    if (close) args.push('-H', 'Connection=close');
    args.push(url);
  }
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    currentLoadgen = c;
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => {
      currentLoadgen = null;
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(h2 ? parseH2Load(out) : cfg.loadgen === 'wrk' ? parseWrk(out) : parseAutocannon(out));
      } catch (e) {
        reject(new Error(`${h2 ? 'h2-load' : cfg.loadgen} ${args.join(' ')} failed (${e.message}):\n${out.slice(-2000)}\n${err.slice(-2000)}`));
      }
    });
  });
}

function parseWrk(out) {
  const m = out.match(/WRKJSON (\{.*\})/);
  if (!m) throw new Error('no WRKJSON line');
  const j = JSON.parse(m[1]);
  const non2xx = Number((out.match(/Non-2xx or 3xx responses: (\d+)/) || [])[1] || 0);
  return {
    requests: j.requests,
    seconds: j.duration_us / 1e6,
    bytes: j.bytes,
    errors: j.err_connect + j.err_read + j.err_write + j.err_timeout + Math.max(j.err_status, non2xx),
    p50_ms: j.p50_us / 1000,
    p99_ms: j.p99_us / 1000,
  };
}

function parseH2Load(out) {
  const m = out.match(/H2JSON (\{.*\})/);
  if (!m) throw new Error('no H2JSON line');
  const j = JSON.parse(m[1]);
  return { requests: j.requests, seconds: j.duration_us / 1e6, bytes: j.bytes, errors: j.errors, p50_ms: j.p50_us / 1000, p99_ms: j.p99_us / 1000 };
}

function parseAutocannon(out) {
  const j = JSON.parse(out.slice(out.indexOf('{')));
  return {
    requests: j.requests.total,
    seconds: j.duration,
    bytes: j.throughput.total,
    errors: (j.errors || 0) + (j.timeouts || 0) + (j.non2xx || 0),
    p50_ms: j.latency.p50,
    p99_ms: j.latency.p99,
  };
}

// ------------------------------------------------------------------ measurement

async function idleCheck() {
  // Wait (bounded) until the machine is mostly idle: 2 shared vCPUs, anything else skews numbers.
  for (let i = 0; i < 20; i++) {
    const a = machineTicks();
    await sleep(300);
    const b = machineTicks();
    const busy = (100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total);
    if (busy <= 20) return busy;
    if (i === 0) log(`  machine ${busy.toFixed(0)}% busy before the run, waiting up to 10 s`);
  }
  return NaN;
}

async function measure(ctx, targetName, caseName) {
  const c = CASES[caseName];
  const url = c.h2
    ? `https://127.0.0.1:${ctx.httpsPort}${c.path}`
    : c.tls
      ? (targetName === 'direct' ? `http://127.0.0.1:${ctx.proxyPort}${c.path}` : `https://127.0.0.1:${ctx.httpsPort}${c.path}`)
      : `http://127.0.0.1:${targetName === 'direct' ? ctx.upstreamPort : ctx.proxyPort}${c.path}`;
  const h2 = Boolean(c.h2) && targetName === 'mproxy';
  const idleBusy = await idleCheck();
  if (cfg.warmup > 0) await runLoadgen(url, c.close, cfg.warmup, h2);

  const proxyPids = treeOf(ctx.mproxyPid);
  const before = {
    proxy: new Map(proxyPids.map((p) => [p, ticksOf(p)])),
    upstream: ticksOf(ctx.upstreamPid),
    machine: machineTicks(),
    opens: activeOpens(),
    reaped: reapedChildTicks(),
    self: process.cpuUsage(),
  };
  let peakRss = rssKb(proxyPids);
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, rssKb(treeOf(ctx.mproxyPid))); }, 200);
  let r;
  try {
    r = await runLoadgen(url, c.close, cfg.duration, h2);
  } finally {
    clearInterval(sampler);
  }
  const after = {
    machine: machineTicks(),
    opens: activeOpens(),
    reaped: reapedChildTicks(),
    self: process.cpuUsage(before.self),
    upstream: ticksOf(ctx.upstreamPid),
  };
  let proxyUser = 0;
  let proxySys = 0;
  const perProc = [];
  for (const [pid, t0] of before.proxy) {
    const t1 = ticksOf(pid);
    if (!t0 || !t1 || t1.start !== t0.start) continue;
    proxyUser += t1.user - t0.user;
    proxySys += t1.sys - t0.sys;
    perProc.push({ pid, cores: (t1.user + t1.sys - t0.user - t0.sys) / HZ / r.seconds });
  }
  const upTicks = after.upstream.user + after.upstream.sys - before.upstream.user - before.upstream.sys;
  const lgTicks = after.reaped - before.reaped;
  const selfTicks = ((after.self.user + after.self.system) / 1e6) * HZ;
  const totalTicks = after.machine.total - before.machine.total;
  const busyTicks = after.machine.busy - before.machine.busy;
  const perReq = (ticks) => (ticks / HZ) * 1e6 / Math.max(1, r.requests);
  // The "direct" runs of the HTTPS and h2 cases go through mproxy too.
  const viaProxy = targetName !== 'direct' || Boolean(c.tls || c.h2);
  return {
    target: targetName,
    case: caseName,
    requests: r.requests,
    seconds: r.seconds,
    rps: r.requests / r.seconds,
    mbps: r.bytes / r.seconds / 1e6,
    p50_ms: r.p50_ms,
    p99_ms: r.p99_ms,
    errors: r.errors,
    proxy_us_per_req: viaProxy ? perReq(proxyUser + proxySys) : null,
    proxy_kernel_us_per_req: viaProxy ? perReq(proxySys) : null,
    proxy_cores_per_proc: viaProxy ? perProc.map((p) => Number(p.cores.toFixed(2))) : null,
    upstream_us_per_req: perReq(upTicks),
    loadgen_us_per_req: perReq(lgTicks),
    tcp_connects_per_req: (after.opens - before.opens) / Math.max(1, r.requests),
    machine_busy_pct: (100 * busyTicks) / Math.max(1, totalTicks),
    foreign_cpu_pct: (100 * Math.max(0, busyTicks - proxyUser - proxySys - upTicks - lgTicks - selfTicks)) / Math.max(1, totalTicks),
    idle_check_busy_pct: idleBusy,
    peak_rss_mib: targetName === 'direct' ? null : peakRss / 1024,
  };
}

// ------------------------------------------------------------------ report

function median(xs) {
  const v = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
const fmt = (x, d = 0) => (x === null || !Number.isFinite(x) ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const range = (xs, d) => {
  const v = xs.filter(Number.isFinite);
  return v.length > 1 ? ` (${fmt(Math.min(...v), d)}-${fmt(Math.max(...v), d)})` : '';
};

function report(results, info) {
  const lines = [];
  const row = (cells) => lines.push(`| ${cells.join(' | ')} |`);
  lines.push('');
  lines.push(`mproxy bench: ${info.loadgen} -c${cfg.conns} ${cfg.duration}s runs, ${cfg.rounds} interleaved rounds, ` +
    `${cfg.workers} workers, Node ${process.version}, ${os.cpus().length} CPUs, load avg at start ${info.loadStart}`);
  lines.push('Medians over rounds; "x direct" = mproxy / direct of the same round, median (min-max). ' +
    'HTTPS cases: "mproxy http" is the baseline, the ratio is HTTPS / HTTP through mproxy. ' +
    `h2: "mproxy https/1.1" (wrk) is the baseline, the ratio is HTTP/2 (bench/h2-load.js, ${cfg.h2Sessions} sessions) / HTTPS/1.1 through mproxy.`);
  lines.push('');
  row(['case', 'target', 'req/s', 'MB/s', 'p50 ms', 'p99 ms', 'x direct (req/s or MB/s)', 'proxy CPU us/req (kernel)', 'upstream us/req', 'loadgen us/req', 'TCP connects/req', 'errors', 'foreign CPU %']);
  row(Array(13).fill('---'));
  const summary = {};
  for (const caseName of cfg.cases) {
    const metric = CASES[caseName].metric;
    const byTarget = (t) => results.filter((r) => r.case === caseName && r.target === t);
    const d = byTarget('direct');
    const m = byTarget('mproxy');
    const ratios = m.map((r) => {
      const dr = d.find((x) => x.round === r.round);
      return dr ? r[metric] / dr[metric] : NaN;
    });
    for (const [name, rs] of [['direct', d], ['mproxy', m]]) {
      const isProxy = name === 'mproxy';
      const label = CASES[caseName].h2 ? (isProxy ? 'mproxy h2' : 'mproxy https/1.1')
        : CASES[caseName].tls ? (isProxy ? 'mproxy https' : 'mproxy http') : name;
      row([
        CASES[caseName].label, label,
        fmt(median(rs.map((r) => r.rps))) + (metric === 'rps' ? range(rs.map((r) => r.rps), 0) : ''),
        fmt(median(rs.map((r) => r.mbps)), 1) + (metric === 'mbps' ? range(rs.map((r) => r.mbps), 0) : ''),
        fmt(median(rs.map((r) => r.p50_ms)), 2),
        fmt(median(rs.map((r) => r.p99_ms)), 2),
        isProxy ? `**${fmt(median(ratios), 2)}**${range(ratios, 2)}` : '1.00',
        rs.some((r) => r.proxy_us_per_req !== null) ? `${fmt(median(rs.map((r) => r.proxy_us_per_req)), 1)} (${fmt(median(rs.map((r) => r.proxy_kernel_us_per_req)), 1)})` : '-',
        fmt(median(rs.map((r) => r.upstream_us_per_req)), 1),
        fmt(median(rs.map((r) => r.loadgen_us_per_req)), 1),
        fmt(median(rs.map((r) => r.tcp_connects_per_req)), 2),
        String(rs.reduce((s, r) => s + r.errors, 0)),
        fmt(Math.max(...rs.map((r) => r.foreign_cpu_pct)), 1),
      ]);
    }
    summary[caseName] = {
      ratio_vs_direct: median(ratios),
      proxy_us_per_req: median(m.map((r) => r.proxy_us_per_req)),
      tcp_connects_per_req: median(m.map((r) => r.tcp_connects_per_req)),
      peak_rss_mib: Math.max(...m.map((r) => r.peak_rss_mib)),
    };
  }
  lines.push('');
  const mem = info.memory;
  lines.push(`mproxy memory (primary + ${cfg.workers} workers, summed): idle RSS ${fmt(mem.idleRssMiB, 1)} MiB (PSS ${fmt(mem.idlePssMiB, 1)}), ` +
    `idle after the load ${fmt(mem.afterRssMiB, 1)} MiB, peak under load ${fmt(Math.max(...results.filter((r) => r.peak_rss_mib).map((r) => r.peak_rss_mib)), 1)} MiB ` +
    `(${cfg.cases.map((c) => `${c} ${fmt(summary[c].peak_rss_mib, 0)}`).join(', ')}).`);
  const procs = cfg.cases.map((c) => {
    const rs = results.filter((r) => r.case === c && r.target === 'mproxy');
    return `${c} ${rs.map((r) => r.proxy_cores_per_proc.join('/')).join(', ')}`;
  });
  lines.push(`mproxy CPU cores per process during each run (primary first, then workers): ${procs.join('; ')}.`);
  const worst = Math.max(...results.map((r) => r.foreign_cpu_pct));
  if (worst > 10) lines.push(`WARNING: other processes used up to ${fmt(worst, 1)}% of the machine's CPU during a run; treat absolute numbers with care (ratios are same-round).`);
  const errs = results.reduce((s, r) => s + r.errors, 0);
  if (errs) lines.push(`WARNING: ${errs} load generator errors (see the errors column).`);
  return { text: lines.join('\n'), summary };
}

// ------------------------------------------------------------------ main

async function main() {
  if (process.platform !== 'linux') throw new Error('bench.js reads /proc: Linux only');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'commands', 'run.js'))) throw new Error('dist/ missing: run `npm run build` first (npm run bench does)');
  const loadStart = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  log(`load average ${loadStart}; ${cfg.loadgen}, ${cfg.rounds} rounds x ${cfg.cases.length} cases x 2 targets x (${cfg.warmup} + ${cfg.duration}) s`);
  if (Number(loadStart.split(' ')[0]) > 1.0) log('note: 1-min load average > 1.0: other jobs are running on this box; absolute numbers will be lower, ratios are same-round');
  if (cfg.maxLoad > 0) {
    const until = Date.now() + cfg.loadWaitS * 1000;
    while (Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]) > cfg.maxLoad && Date.now() < until) {
      log(`waiting for load average < ${cfg.maxLoad}`);
      await sleep(10000);
    }
  }

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mproxy-bench-'));
  const stateDir = path.join(tmpDir, 'state');
  const ctx = {};

  // Upstream
  const up = spawnTracked('upstream', process.execPath, [path.join(__dirname, 'upstream.js'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  ctx.upstreamPort = Number((await waitForLine(up.child, /READY (\d+)/, 'upstream'))[1]);
  ctx.upstreamPid = up.child.pid;

  // mproxy: request log (JSON lines on stdout) to a file, as in production; never a pipe we must drain.
  const logFile = path.join(tmpDir, 'mproxy.log');
  const logFd = fs.openSync(logFile, 'a');
  const env = { ...process.env };
  for (const k of ['MPROXY_HTTP_PORT', 'HTTP_PORT', 'MPROXY_WORKERS', 'MPROXY_DEBUG', 'MPROXY_STATE_DIR']) delete env[k];
  const mp = spawnTracked('mproxy', process.execPath,
    [BIN, 'run', '--http-port', '0', '--https-port', '0', '--workers', String(cfg.workers), '--state-dir', stateDir,
      '--access-log', process.env.ACCESS_LOG === 'false' ? 'false' : 'true'],
    { stdio: ['ignore', logFd, logFd], env });
  fs.closeSync(logFd);
  const listening = await waitForFileLine(logFile, /^(?=.*"msg":"listening").*"http":(\d+),"https":(\d+)/m, mp, 'mproxy run');
  ctx.proxyPort = Number(listening[1]);
  ctx.httpsPort = Number(listening[2]);
  ctx.mproxyPid = mp.child.pid;
  // One service for 127.0.0.1, the Host and SNI the load generator sends, with a certificate for
  // it; plain HTTP is not redirected, so the same service serves both kinds of case.
  const cert = writeSelfSigned(tmpDir, '127.0.0.1');
  await runCli(['deploy', `127.0.0.1:${ctx.upstreamPort}`, '--host', '127.0.0.1', '--tls-certificate-path', cert.certFile,
    '--tls-private-key-path', cert.keyFile, '--tls-redirect=false', '--state-dir', stateDir, '--quiet',
    ...(process.env.DEPLOY_FLAGS || '').split(' ').filter(Boolean)]);
  const status = JSON.parse(await runCli(['status', '--json', '--state-dir', stateDir]));
  if (status.pid !== ctx.mproxyPid) throw new Error(`status pid ${status.pid} != started pid ${ctx.mproxyPid}`);
  log(`upstream 127.0.0.1:${ctx.upstreamPort} (pid ${ctx.upstreamPid}); mproxy 127.0.0.1:${ctx.proxyPort} (pid ${status.pid}, workers ${status.workerPids.join(', ')})`);

  // Checks: same bytes through mproxy as direct; Connection: close is honoured towards the client.
  const small = await httpGet(ctx.proxyPort, '/');
  const smallDirect = await httpGet(ctx.upstreamPort, '/');
  if (small.status !== 200 || !small.body.equals(smallDirect.body) || small.body.length !== 100) throw new Error(`GET / through mproxy: ${small.status}, ${small.body.length} bytes`);
  const big = await httpGet(ctx.proxyPort, '/big?kb=64');
  if (big.status !== 200 || big.body.length !== 65536) throw new Error(`GET /big?kb=64 through mproxy: ${big.status}, ${big.body.length} bytes`);
  const closed = await httpGet(ctx.proxyPort, '/', { connection: 'close' });
  if (closed.status !== 200 || closed.headers.connection !== 'close') log(`warning: Connection: close request answered with connection: ${closed.headers.connection}`);

  await sleep(2000);
  const idleTree = treeOf(ctx.mproxyPid);
  const memory = { idleRssMiB: rssKb(idleTree) / 1024, idlePssMiB: pssKb(idleTree) / 1024, processes: idleTree.length };
  log(`idle: ${idleTree.length} processes, RSS ${memory.idleRssMiB.toFixed(1)} MiB, PSS ${memory.idlePssMiB.toFixed(1)} MiB`);

  const results = [];
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const caseName of cfg.cases) {
      const order = round % 2 ? ['direct', 'mproxy'] : ['mproxy', 'direct'];
      for (const target of order) {
        const r = await measure(ctx, target, caseName);
        r.round = round;
        results.push(r);
        const main = CASES[caseName].metric === 'rps' ? `${fmt(r.rps)} req/s` : `${fmt(r.mbps)} MB/s`;
        log(`r${round} ${caseName.padEnd(6)} ${target.padEnd(6)} ${main.padStart(13)}  p99 ${fmt(r.p99_ms, 2)} ms  err ${r.errors}` +
          (r.proxy_us_per_req !== null ? `  proxy ${fmt(r.proxy_us_per_req, 1)} us/req  cores ${r.proxy_cores_per_proc.join('/')}` : '') +
          `  conn/req ${fmt(r.tcp_connects_per_req, 2)}  foreign ${fmt(r.foreign_cpu_pct, 1)}%`);
      }
    }
  }
  await sleep(3000);
  memory.afterRssMiB = rssKb(treeOf(ctx.mproxyPid)) / 1024;

  const { text, summary } = report(results, { loadgen: cfg.loadgen, loadStart, memory });
  process.stdout.write(text + '\n');
  if (cfg.json) {
    fs.writeFileSync(cfg.json, JSON.stringify({ config: cfg, loadStart, node: process.version, memory, summary, results }, null, 2));
    log(`raw results: ${cfg.json}`);
  }
}

main()
  .then(() => stopAll())
  .then(() => { removeTmp(); process.exit(0); })
  .catch(async (err) => {
    log(`failed: ${err.stack || err.message}`);
    await stopAll();
    removeTmp();
    process.exit(1);
  });
