// What the agent's and the control plane's Prometheus metrics share (docs/operations.md
// "Prometheus metrics"): the text exposition format's content type, and the one registry of
// prom-client's default process and Node.js metrics per process.

import { collectDefaultMetrics, Registry } from 'prom-client';

/** The content type of the text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

let processRegistry: Registry | undefined;

/**
 * The process-wide registry of prom-client's default metrics (process_*, nodejs_*), made at the
 * first call. Once per process: they install GC and event-loop observers that cannot be removed,
 * and several agents and control planes may run in one process (tests, `demo`). Not prom-client's
 * global registry, which an embedding application may own.
 */
export function processMetricsRegistry(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}
