// Live conformance scenarios against a running WireGuard implementation (placeholder until the
// namespace scenarios land).

import type { Report } from './report.js';

/** Scenario names, in run order. */
export const LIVE_SCENARIOS: readonly string[] = [];

/** Options of runLive. */
export interface LiveOptions {
  readonly target: string;
  readonly peer: string;
  selected(name: string): boolean;
  progress(line: string): void;
}

/** Why live scenarios cannot run here, or undefined. */
export function liveUnavailableReason(_target: string, _peer: string): string | undefined {
  return 'live scenarios are not implemented yet';
}

/** Runs the selected scenarios. */
export async function runLive(opts: LiveOptions): Promise<Report> {
  return { suite: 'live', subject: opts.target, results: [] };
}
