// Preloaded into our daemon by bench:tunnel --gc (node --import): counts garbage collections by
// kind and their pause time with a PerformanceObserver, and on SIGUSR2 writes a snapshot
// { gc: {kind: count}, gcCount, gcPauseMs, heapUsed, heapTotal, rss } as one JSON line to the
// file named by PLEXD_BENCH_GC_FILE. Changes nothing else in the daemon.

import { appendFileSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';

const file = process.env.PLEXD_BENCH_GC_FILE;
const KIND = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};
const counts = {};
let total = 0;
let pauseMs = 0;

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = KIND[e.detail?.kind] ?? 'other';
    counts[kind] = (counts[kind] ?? 0) + 1;
    total++;
    pauseMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

if (file) {
  process.on('SIGUSR2', () => {
    const m = process.memoryUsage();
    appendFileSync(file, JSON.stringify({ gc: { ...counts }, gcCount: total, gcPauseMs: pauseMs, heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss }) + '\n');
  });
}
