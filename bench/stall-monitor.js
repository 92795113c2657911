/*
 * Preloaded into the mproxy primary by bench/control-plane.js (`node --require`), to tell the
 * primary's own stalls from the machine's. A loop that runs late was either busy or waiting for
 * a CPU, and the event-loop delay alone cannot say which. So every TICK_MS this notes how long
 * it has been since its last tick and how much CPU the main thread used meanwhile: a tick more
 * than STALL_MS late during which the thread ran for more than STALL_MS of CPU was the primary's
 * own doing (one long synchronous stretch: timers run on every turn of the loop); one during
 * which the thread hardly ran was the machine. It also keeps the most CPU the thread used between
 * two ticks, late or not: the primary's longest synchronous stretch, whatever the machine's load.
 *
 * Acts only in the primary's main thread (not in workers, which have an IPC channel, nor in its
 * threads) and only with MPROXY_BENCH_STALLS set: at exit it writes its findings there as JSON.
 */
'use strict';

const fs = require('node:fs');
const { isMainThread } = require('node:worker_threads');

const TICK_MS = 2;
const STALL_MS = 20;
/** The longest own stalls kept, with their time, to look for in the proxy's log. */
const KEEP_LONGEST = 5;

const file = process.env.MPROXY_BENCH_STALLS;
if (file && isMainThread && !process.send) {
  const found = { longestCpuMs: 0, longestCpuAt: '', stalls: 0, ownStalls: 0, longestLateMs: 0, longestOwnCpuMs: 0, longestOwn: [] };
  // From the first tick on, as the primary's own measure: loading the modules comes before both.
  let last;
  let cpu;
  setInterval(() => {
    const now = process.hrtime.bigint();
    const used = cpu && process.threadCpuUsage(cpu);
    cpu = process.threadCpuUsage();
    const lateMs = last === undefined ? 0 : Number(now - last) / 1e6 - TICK_MS;
    last = now;
    const cpuMs = used ? (used.user + used.system) / 1000 : 0;
    if (cpuMs > found.longestCpuMs) Object.assign(found, { longestCpuMs: cpuMs, longestCpuAt: new Date().toISOString() });
    if (lateMs <= STALL_MS) return;
    found.stalls++;
    found.longestLateMs = Math.max(found.longestLateMs, lateMs);
    if (cpuMs <= STALL_MS) return;
    found.ownStalls++;
    found.longestOwnCpuMs = Math.max(found.longestOwnCpuMs, cpuMs);
    found.longestOwn.push({ at: new Date().toISOString(), lateMs: Math.round(lateMs), cpuMs: Math.round(cpuMs) });
    found.longestOwn = found.longestOwn.sort((a, b) => b.cpuMs - a.cpuMs).slice(0, KEEP_LONGEST);
  }, TICK_MS).unref();
  process.on('exit', () => fs.writeFileSync(file, JSON.stringify(found)));
}
