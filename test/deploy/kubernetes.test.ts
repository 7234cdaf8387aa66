// deploy/kubernetes/*.yaml and deploy/Dockerfile (docs/deploy.md "Kubernetes"): every manifest
// parses; the namespace, ServiceAccount, least-privilege RBAC (no ClusterRole, no wildcard, no
// rule at all today), the token Secret and config; the DaemonSet with hostNetwork, NET_ADMIN and
// NET_RAW only and no privileged container, /dev/net/tun and data_dir from the host, probes on
// the health port, the node name (downward API) as resource_handle and the token from the Secret.
// Nothing here can run a container: the Dockerfile is checked as text.

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { resolveConfig } from '../../src/agent/config.js';

const DIR = new URL('../../deploy/kubernetes/', import.meta.url);
type Obj = Record<string, any>;

/** Every document of every manifest, parsed strictly. */
function manifests(): Obj[] {
  const out: Obj[] = [];
  for (const f of readdirSync(DIR).filter((n) => n.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(readFileSync(new URL(f, DIR), 'utf8'), { uniqueKeys: true })) {
      expect(d.errors, f).toEqual([]);
      out.push(d.toJS() as Obj);
    }
  }
  return out;
}

const all = manifests();
const one = (kind: string): Obj => {
  const found = all.filter((m) => m.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

describe('Kubernetes manifests', () => {
  it('are the expected objects, all in plexd-system', () => {
    expect(all.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(
      ['ConfigMap/plexd-config', 'DaemonSet/plexd', 'Namespace/plexd-system', 'Role/plexd', 'RoleBinding/plexd', 'Secret/plexd-bootstrap', 'ServiceAccount/plexd'].sort(),
    );
    for (const m of all) if (m.kind !== 'Namespace') expect(m.metadata.namespace, m.kind).toBe('plexd-system');
  });

  it('RBAC is least privilege: a namespaced Role with no rules, bound to the ServiceAccount', () => {
    expect(JSON.stringify(all)).not.toMatch(/ClusterRole|"\*"/);
    expect(one('Role').rules).toEqual([]);
    const binding = one('RoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'plexd' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'plexd', namespace: 'plexd-system' }]);
    expect(one('ServiceAccount').automountServiceAccountToken).toBe(true);
  });

  it('the Secret holds the token under `token`; the config loads', () => {
    const secret = one('Secret');
    expect(secret.type).toBe('Opaque');
    expect(Object.keys(secret.stringData)).toEqual(['token']);
    const c = resolveConfig({ fileText: one('ConfigMap').data['config.yaml'], env: {} });
    expect(c).toMatchObject({ dataDir: '/var/lib/plexd', health: { listen: '127.0.0.1:9101' }, kubernetes: { auditLogPath: '/var/log/kubernetes/audit/audit.log' } });
  });

  describe('DaemonSet', () => {
    const ds = one('DaemonSet');
    const pod = ds.spec.template.spec;
    const [c, ...more] = pod.containers as Obj[];
    const env = new Map((c!.env as Obj[]).map((e) => [e.name, e]));
    const mount = (path: string) => (c!.volumeMounts as Obj[]).find((m) => m.mountPath === path);
    const volume = (name: string) => (pod.volumes as Obj[]).find((v) => v.name === name);

    it('one container on the host network, as the ServiceAccount, selector matching the template', () => {
      expect(more).toEqual([]);
      expect(pod.hostNetwork).toBe(true);
      expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
      expect(pod.serviceAccountName).toBe('plexd');
      expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
      expect(c!.args).toEqual(['up', '--config', '/etc/plexd/config.yaml']);
    });

    it('adds NET_ADMIN and NET_RAW only, drops the rest, and is never privileged', () => {
      expect(JSON.stringify(all)).not.toMatch(/"privileged":true/);
      expect(c!.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] } });
      expect(pod.securityContext?.privileged).toBeUndefined();
      expect(pod.hostPID ?? false).toBe(false);
    });

    it('/dev/net/tun and data_dir come from the host', () => {
      expect(volume(mount('/dev/net/tun')!.name)!.hostPath).toEqual({ path: '/dev/net/tun', type: 'CharDevice' });
      expect(volume(mount('/var/lib/plexd')!.name)!.hostPath).toMatchObject({ path: '/var/lib/plexd' });
      expect(mount('/var/lib/plexd')!.readOnly ?? false).toBe(false);
      expect(volume(mount('/var/log/kubernetes/audit')!.name)!.hostPath.path).toBe('/var/log/kubernetes/audit');
      expect(mount('/var/log/kubernetes/audit')!.readOnly).toBe(true);
    });

    it('liveness and readiness on the health port (loopback: the pod shares the host network)', () => {
      expect(c!.livenessProbe.httpGet).toEqual({ host: '127.0.0.1', port: 9101, path: '/healthz' });
      expect(c!.readinessProbe.httpGet).toEqual({ host: '127.0.0.1', port: 9101, path: '/readyz' });
    });

    it('the node name (downward API) is the resource handle; the token comes from the Secret', () => {
      expect(env.get('PLEXD_RESOURCE_HANDLE')).toEqual({ name: 'PLEXD_RESOURCE_HANDLE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
      expect(env.get('MY_NODE_NAME')!.valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
      expect(env.get('PLEXD_BOOTSTRAP_TOKEN')!.valueFrom.secretKeyRef).toMatchObject({ name: 'plexd-bootstrap', key: 'token' });
      // Per-node tokens: the Secret mounted, the file named after the node ($(VAR) is expanded by the kubelet).
      expect(env.get('PLEXD_BOOTSTRAP_TOKEN_FILE')!.value).toBe('/etc/plexd-bootstrap/$(MY_NODE_NAME)');
      expect([...env.keys()].indexOf('MY_NODE_NAME')).toBeLessThan([...env.keys()].indexOf('PLEXD_BOOTSTRAP_TOKEN_FILE'));
      expect(volume(mount('/etc/plexd-bootstrap')!.name)!.secret).toMatchObject({ secretName: 'plexd-bootstrap', optional: true });
      // The names the agent reads.
      const r = resolveConfig({ env: { PLEXD_API: 'https://x.example', PLEXD_RESOURCE_HANDLE: 'worker-1', PLEXD_BOOTSTRAP_TOKEN_FILE: '/etc/plexd-bootstrap/worker-1' } });
      expect(r.registration).toMatchObject({ resourceHandle: 'worker-1', tokenFile: '/etc/plexd-bootstrap/worker-1', tokenEnv: 'PLEXD_BOOTSTRAP_TOKEN' });
    });
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(new URL('../../deploy/Dockerfile', import.meta.url), 'utf8');
  it('builds on a Debian Node.js 20 base and installs the npm tarball, nothing fetched beyond apt', () => {
    expect(text).toMatch(/^FROM node:20-bookworm-slim$/m);
    expect(text).toMatch(/npm install --global .*\/tmp\/plexd-userspace\.tgz/);
    expect(text).toMatch(/apt-get install -y --no-install-recommends iproute2/);
    expect(text).not.toMatch(/curl|wget|git clone/);
    expect(text).toMatch(/^ENTRYPOINT \["plexd-userspace"\]$/m);
  });
});
