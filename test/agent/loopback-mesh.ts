// In-process mesh for agent tests (no root): a control plane over HTTP on a temp dir and
// packet-callback agents on 127.0.0.1 (waiting: test/helpers/wait.ts).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../../src/agent/agent.js';
import { resolveConfig, type AgentConfig } from '../../src/agent/config.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { createControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/control-plane/server.js';

/**
 * A temp dir (prefix `tmpPrefix`) with a control plane on 127.0.0.1:0 over HTTP, its database cp.db
 * in it. `allowAll`: set an allow-all policy on project default first (agents deny by default).
 */
export async function startControlPlane(tmpPrefix: string, opts: Partial<ControlPlaneOptions> = {}, allowAll = false): Promise<{ dir: string; cp: ControlPlane }> {
  const dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  const cp = await createControlPlane({ db: join(dir, 'cp.db'), listen: '127.0.0.1:0', insecureHttp: true, ...opts });
  if (allowAll) cp.store.setPolicy('default', ALLOW_ALL_MESH_RULES);
  return { dir, cp };
}

/**
 * Config of agent `i` against `cpUrl`: packet callback (no TUN) on 127.0.0.1, any port, data in
 * dir/n<i>, resource handle `handle`; `extra` flags (registration, health, node API) added.
 */
export function loopbackAgentConfig(cpUrl: string, dir: string, i: number, handle: string, extra: ReadonlyArray<readonly [string, string]>): AgentConfig {
  const flags = new Map<string, string>([
    ['api.base_url', cpUrl],
    ['data_dir', join(dir, `n${i}`)],
    ['registration.resource_handle', handle],
    ['wireguard.packet_callback', 'true'],
    ['wireguard.bind_address', '127.0.0.1'],
    ['wireguard.listen_port', '0'],
    ...extra,
  ]);
  return resolveConfig({ env: {}, flags });
}

/** Stops the agents and the control plane and removes the dir; for afterAll, so it never throws. */
export async function stopMesh(agents: readonly Agent[], cp: ControlPlane | undefined, dir: string | undefined): Promise<void> {
  for (const a of agents) await a.stop().catch(() => undefined);
  await cp?.close().catch(() => undefined);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}
