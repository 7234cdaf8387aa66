// In-cluster detection (upstream's KubernetesEnvironment, deployment docs "Kubernetes"): the agent
// runs in a pod when KUBERNETES_SERVICE_HOST is set and the service account's token file is
// mounted. The token is never read (only its presence counts); the namespace file is read,
// bounded. Shown in `status`; in a cluster the agent follows the audit log (./audit-log.ts).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the kubelet mounts the pod's service account. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What the pod knows about itself; null fields were not given. */
export interface KubernetesEnvironment {
  readonly namespace: string | null;
  /** HOSTNAME (the pod name unless hostNetwork, where it is the node's host name). */
  readonly pod: string | null;
  /** MY_NODE_NAME (downward API spec.nodeName, as upstream's manifests set it). */
  readonly node: string | null;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function named(v: string | undefined): string | null {
  return v !== undefined && NAME.test(v) ? v : null;
}

/**
 * The Kubernetes environment, or undefined outside a cluster (no KUBERNETES_SERVICE_HOST, or no
 * token file under `saDir`). Never throws: an unreadable or odd namespace file gives null.
 */
export function detectKubernetes(env: Readonly<Record<string, string | undefined>>, saDir = SERVICE_ACCOUNT_DIR): KubernetesEnvironment | undefined {
  const host = env['KUBERNETES_SERVICE_HOST'];
  if (host === undefined || host === '' || !existsSync(join(saDir, 'token'))) return undefined;
  let namespace: string | null = null;
  try {
    const buf = readFileSync(join(saDir, 'namespace'));
    if (buf.length <= 253) namespace = named(buf.toString('latin1').trim());
  } catch {
    // no namespace file: leave it null
  }
  return { namespace, pod: named(env['HOSTNAME']), node: named(env['MY_NODE_NAME']) };
}
