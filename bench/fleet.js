#!/usr/bin/env node
/*
 * Fleet convergence: `npm run bench:fleet` (= build, then this file).
 *
 * For each fleet size N in NODES (default 1,2,4,8), starts one redis-server (unix socket), two
 * upstreams (A and B) and N `mproxy run --workers 1` nodes sharing the Redis, then deploys A and B
 * alternately through node 1, DEPLOYS times. For each deploy it measures, from the moment the
 * `deploy` command is started:
 *   converged  the time until every node answers with the new upstream (each node polled every 5 ms)
 *   lag        how long after node 1 the last node switched (the fleet's own delay)
 *   returned   the time until `deploy` exits (it waits for every live node to switch and drain)
 * and prints the medians and maxima, with the bytes Redis sent per deploy (everything included:
 * notifications, reads, reports, heartbeats). It also reads Redis's command count over IDLE_S
 * seconds of an idle fleet (heartbeats), as commands per second per node.
 *
 * SERVICES=S first writes S more services into Redis (hosts svcN.test, all on upstream A), to
 * show what the number of services costs a deploy of one of them.
 *
 * Env knobs: NODES=1,2,4,8  DEPLOYS=5  IDLE_S=5  SERVICES=0. Every process it starts is stopped
 * at the end.
 */
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const BIN = path.join(__dirname, '..', 'bin', 'run.js');
const SIZES = (process.env.NODES || '1,2,4,8').split(',').map(Number);
const DEPLOYS = Number(process.env.DEPLOYS || 5);
const IDLE_S = Number(process.env.IDLE_S || 5);
const SERVICES = Number(process.env.SERVICES || 0);
const children = [];

function startChild(command, args, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const onData = (chunk) => {
      out += chunk;
      const match = ready.exec(out);
      if (match) resolve({ child, match });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready:\n${out.slice(-2000)}`)));
  });
}

function startUpstream(name) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => res.end(name));
    server.keepAliveTimeout = 60_000;
    server.listen(0, '127.0.0.1', () => resolve({ server, address: `127.0.0.1:${server.address().port}` }));
  });
}

const agent = new http.Agent({ keepAlive: true });
function get(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('error', () => resolve(''));
  });
}

function cli(stateDir, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`mproxy ${args.join(' ')} failed (${code}):\n${out}`))));
  });
}

/** Resolves with the time at which each node first answers `name`. */
function waitServed(ports, name) {
  return Promise.all(ports.map(async (port) => {
    while ((await get(port)) !== name) await new Promise((resolve) => setTimeout(resolve, 5));
    return performance.now();
  }));
}

function redisStat(socket, name) {
  const info = execFileSync('redis-cli', ['-s', socket, 'info', 'stats'], { encoding: 'utf8' });
  return Number(new RegExp(`${name}:(\\d+)`).exec(info)[1]);
}

/** SERVICES extra services, written the way nodes write them (see src/primary/shared-state.ts). */
function seedServices(socket, upstream) {
  const pairs = [];
  for (let i = 1; i <= SERVICES; i++) {
    const spec = {
      name: `svc${i}`, hosts: [`svc${i}.test`], targets: [upstream.address],
      healthCheck: { path: '/up', intervalMs: 5000, timeoutMs: 5000 }, targetTimeoutMs: 30000, drainTimeoutMs: 30000,
      tls: false, tlsRedirect: true,
    };
    pairs.push(spec.name, JSON.stringify({ revision: 1, origin: 'bench', spec }));
  }
  execFileSync('redis-cli', ['-s', socket, 'hset', 'mproxy:services', ...pairs]);
  execFileSync('redis-cli', ['-s', socket, 'mset', 'mproxy:epoch', 'bench', 'mproxy:revision', '1']);
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ms = (value) => `${value.toFixed(0)} ms`;

async function measure(size, upstreams) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mproxy-fleet-'));
  const socket = path.join(dir, 'redis.sock');
  await startChild('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir], /ready to accept connections/i);
  if (SERVICES > 0) seedServices(socket, upstreams.A);
  const nodes = [];
  for (let i = 1; i <= size; i++) {
    const stateDir = path.join(dir, `n${i}`);
    const { match } = await startChild(process.execPath, [
      BIN, 'run', '--http-port', '0', '--https-port', '0', '--workers', '1', '--state-dir', stateDir,
      '--redis-url', `unix://${socket}`, '--node-name', `n${i}`,
    ], /^(?=.*"msg":"listening").*"http":(\d+)/m);
    nodes.push({ stateDir, port: Number(match[1]) });
  }
  const ports = nodes.map((node) => node.port);
  const deploy = (upstream) => cli(nodes[0].stateDir, ['deploy', upstream.address, '--health-check-interval', '100ms', '-q']);
  await deploy(upstreams.B);
  await waitServed(ports, 'B');

  const converged = [];
  const spread = [];
  const returned = [];
  const bytesBefore = redisStat(socket, 'total_net_output_bytes');
  for (let i = 0; i < DEPLOYS; i++) {
    const next = i % 2 === 0 ? 'A' : 'B';
    const startedAt = performance.now();
    const [servedAt, returnedAt] = await Promise.all([waitServed(ports, next), deploy(upstreams[next]).then(() => performance.now())]);
    converged.push(Math.max(...servedAt) - startedAt);
    spread.push(Math.max(...servedAt) - servedAt[0]);
    returned.push(returnedAt - startedAt);
  }

  const bytesPerDeploy = (redisStat(socket, 'total_net_output_bytes') - bytesBefore) / DEPLOYS;

  const before = redisStat(socket, 'total_commands_processed');
  await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000));
  const perNodePerSecond = (redisStat(socket, 'total_commands_processed') - before - 1) / IDLE_S / size;
  stopAll();
  return { size, converged, spread, returned, bytesPerDeploy, perNodePerSecond };
}

function stopAll() {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGTERM');
}

async function main() {
  const upstreams = { A: await startUpstream('A'), B: await startUpstream('B') };
  console.log(`fleet convergence: ${DEPLOYS} deploys through node 1 per fleet size, ${SERVICES + 1} services; times from the deploy command's start`);
  console.log('nodes  every node serves     lag after node 1   deploy returns     redis KiB out   idle redis commands/s');
  console.log('       (median / max)        (median / max)     (median / max)     per deploy      per node');
  for (const size of SIZES) {
    const result = await measure(size, upstreams);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const cell = (values) => `${ms(median(values))} / ${ms(Math.max(...values))}`.padEnd(17);
    const kib = (result.bytesPerDeploy / 1024).toFixed(1).padEnd(14);
    console.log(`${String(size).padStart(5)}  ${cell(result.converged)}     ${cell(result.spread)}  ${cell(result.returned)}  ${kib}  ${result.perNodePerSecond.toFixed(1)}`);
  }
  for (const upstream of Object.values(upstreams)) upstream.server.close();
  agent.destroy();
}

process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});
main().catch((err) => {
  console.error(err);
  stopAll();
  process.exit(1);
});
