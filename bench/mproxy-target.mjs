// mproxy as a target for the shared perf-anchor kit (run-anchors.sh), via EXTRA_TARGETS:
//
//   cp -r <shared>/bench /tmp/anchors && cd /tmp/anchors && \
//   EXTRA_TARGETS=/work/main/bench/mproxy-target.mjs TARGETS=nginx,node-hp3-2w,mproxy \
//     PHASES='node:small,big64k,close' ./run-anchors.sh
//
// Env: MPROXY_BIN (default: ../bin/run.js next to this file, i.e. /work/main/bin/run.js; always run
// with this Node, process.execPath), MPROXY_WORKERS (default 2),
// MPROXY_LOG=file|pipe (default file: the JSON-line request log goes to <ctx.dir>/mproxy.out, as it
// would to a log file in production; "pipe" hands it to the runner, which then spends its own CPU
// copying the log, a cost nginx (access_log off) does not cause).
//
// `mproxy run` stays in the foreground (cluster primary); its workers are its children, so the kit
// finds them through the process tree and stops them by pid. State and the control socket live in
// ctx.dir (--state-dir). `mproxyTarget()` builds more targets, e.g. for A/B runs of modified builds:
//   import { mproxyTarget } from '/work/main/bench/mproxy-target.mjs';
//   export const targets = [mproxyTarget({ name: 'mproxy-exp', bin: '/tmp/exp/bin/run.js' })];
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export function mproxyTarget({
  name = 'mproxy',
  bin = process.env.MPROXY_BIN || path.join(here, '..', 'bin', 'run.js'),
  workers = process.env.MPROXY_WORKERS || '2',
  label = `mproxy (${workers} workers)`,
  env = {},
} = {}) {
  return {
    name,
    label,
    async start(ctx) {
      const runArgs = [bin, 'run', '--http-port', String(ctx.port), '--workers', String(workers), '--state-dir', ctx.dir];
      const out = path.join(ctx.dir, 'mproxy.out');
      if (process.env.MPROXY_LOG === 'pipe') {
        await ctx.spawn(process.execPath, runArgs, { readyLine: /"msg":"listening"/, env });
      } else {
        // `exec` keeps the pid: the process ctx.spawn records *is* the mproxy primary.
        await ctx.spawn('/bin/sh', ['-c', 'exec "$0" "$@" >>"$MPROXY_BENCH_LOG"', process.execPath, ...runArgs], {
          env: { ...env, MPROXY_BENCH_LOG: out },
        });
        // The workers listen before the control socket exists: wait for the "listening" line.
        const until = Date.now() + 20000;
        while (!(fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('"msg":"listening"'))) {
          if (Date.now() > until) throw new Error(`${name}: no "listening" line after 20 s, see ${out}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      await ctx.waitPort(ctx.port, 20000);
      // Returns once /up is healthy and every worker has the route.
      await ctx.exec(process.execPath, [bin, 'deploy', `127.0.0.1:${ctx.upstreamPort}`, '--state-dir', ctx.dir, '--quiet']);
    },
  };
}

export const targets = [mproxyTarget()];
