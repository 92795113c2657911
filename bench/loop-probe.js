#!/usr/bin/env node
/*
 * A Node process that does nothing but measure its own event-loop delay, as the mproxy primary
 * does (src/primary/event-loop-delay.ts: same resolution, same arithmetic). Run beside the
 * primary, it tells how late any process's loop runs on this machine just waiting for a CPU, so
 * that bench/control-plane.js can tell the primary's own stalls from the machine's.
 * Forked with an IPC channel: any message makes it answer { p50Ms, p99Ms, maxMs } and exit.
 */
'use strict';

const { monitorEventLoopDelay } = require('node:perf_hooks');

const RESOLUTION_MS = Number(process.argv[2] || 2);
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
histogram.enable();

const lateness = (intervalNs) => (histogram.count === 0 ? 0 : Math.max(0, Math.round((intervalNs / 1e6 - RESOLUTION_MS) * 100) / 100));

process.on('message', () => {
  histogram.disable();
  process.send({ p50Ms: lateness(histogram.percentile(50)), p99Ms: lateness(histogram.percentile(99)), maxMs: lateness(histogram.max) }, () => process.exit(0));
});
// Never outlives the benchmark that forked it.
process.on('disconnect', () => process.exit(0));
