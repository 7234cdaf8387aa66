// The dashboard in a real browser (issue 21): Debian's chromium, headless, driven by playwright-core
// (nothing downloaded). Three in-process agents on loopback (as `plexd-userspace demo`, no root):
// log in, see the three nodes, watch the edges of a node that comes back up turn from down to
// direct without a reload, create and revoke a token, log out. Screenshots and the page weights
// and first-paint times go to test-artifacts/dashboard/ (gitignored; the path is printed).

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { resolveConfig } from '../../src/agent/config.js';
import { ALLOW_ALL_MESH_RULES } from '../../src/control-plane/policy.js';
import { createControlPlane, type ControlPlane } from '../../src/control-plane/server.js';
import { createAdminToken } from '../../src/control-plane/ui/admin-auth.js';
import { silentLogger } from '../../src/log/logger.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts/dashboard');

async function loadPlaywright(): Promise<typeof import('playwright-core') | undefined> {
  try {
    return await import('playwright-core');
  } catch {
    return undefined;
  }
}

const playwright = await loadPlaywright();
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (apt-get install chromium)` : playwright === undefined ? 'playwright-core is not installed' : undefined;

describe.skipIf(skip !== undefined)(`dashboard in chromium${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  let dir: string;
  let cp: ControlPlane;
  const agents: Agent[] = [];
  let browser: import('playwright-core').Browser | undefined;

  const startAgent = (i: number): Promise<Agent> =>
    Agent.start({
      config: resolveConfig({
        env: {},
        flags: new Map([
          ['api.base_url', cp.url],
          ['data_dir', join(dir, `node${i}`)],
          ['registration.token', cp.store.createToken().token],
          ['registration.resource_handle', `demo-node-${i}`],
          ['wireguard.interface_name', `uidemo${i}`],
          ['wireguard.packet_callback', 'true'],
          ['wireguard.bind_address', '127.0.0.1'],
          ['wireguard.listen_port', '0'],
          ['heartbeat.interval', '1s'],
        ]),
      }),
      logger: silentLogger,
      health: false,
      nodeApi: false,
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'plexd-ui-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    cp = await createControlPlane({ db: join(dir, 'cp.db'), listen: '127.0.0.1:0', insecureHttp: true, pollMs: 50 });
    cp.store.setPolicy('default', ALLOW_ALL_MESH_RULES);
    for (let i = 1; i <= 3; i++) agents.push(await startAgent(i));
    browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, args: process.geteuid?.() === 0 ? ['--no-sandbox'] : [] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    for (const a of agents) await a.stop().catch(() => undefined);
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs in, follows a node coming up live, creates and revokes a token, logs out', async () => {
    // demo-node-3 goes away: its agent stops and the liveness sweep would mark it offline after
    // 5 minutes without heartbeats (OFFLINE_AFTER_MS); the test sets that status instead of waiting.
    const third = agents.pop()!;
    const thirdId = third.identity.node_id;
    await third.stop();
    cp.store.db.prepare("UPDATE nodes SET status = 'offline' WHERE node_id = ?").run(thirdId);

    const page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
    const consoleErrors: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
    const shot = async (name: string) => {
      const file = join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    };

    await page.goto(`${cp.url}/ui/`);
    expect(page.url()).toBe(`${cp.url}/ui/login`);
    await page.getByLabel('Admin token').fill('plexd_admin_' + 'x'.repeat(43));
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Wrong or revoked');
    const { token } = createAdminToken(cp.store.db, 'browser test', cp.store.now());
    await page.getByLabel('Admin token').fill(token);
    await page.getByLabel('Admin token').press('Enter'); // keyboard only
    await page.waitForURL(`${cp.url}/ui/`);
    consoleErrors.length = 0; // the wrong token's 401 was expected; from here on, none

    // Nodes: three demo nodes; the third offline, its paths down.
    for (let i = 1; i <= 3; i++) await page.getByRole('rowheader', { name: new RegExp(`demo-node-${i}`) }).waitFor();
    expect(await page.locator(`tr[data-node="${thirdId}"] .status`).textContent()).toBe('offline');
    await shot('1-nodes');

    // The live graph: edges to demo-node-3 down, then direct once it heartbeats again (no reload).
    await page.getByRole('link', { name: 'Mesh graph' }).click();
    await page.locator('#graph-state', { hasText: 'Live' }).waitFor();
    expect(await page.locator('line.edge').count()).toBe(3);
    expect(await page.locator('line[data-path="down"]').count()).toBe(2);
    expect(await page.locator('line[data-path="direct"]').count()).toBe(1);
    await shot('2-graph-node-down');
    const navigations: string[] = [];
    page.on('framenavigated', (f) => void (f === page.mainFrame() && navigations.push(f.url())));
    const back = Date.now();
    agents.push(await startAgent(3));
    await page.locator('line[data-path="direct"]').nth(2).waitFor({ state: 'attached', timeout: 20_000 }); // a level line has an empty box: 'visible' never holds
    const liveMs = Date.now() - back;
    expect(await page.locator('line[data-path="down"]').count()).toBe(0);
    expect(navigations).toEqual([]); // updated in place through /ui/events
    const graphShot = await shot('3-graph-all-direct');

    // Policy: the per-rule counters agents report in heartbeats; a ping through the mesh counts
    // on the allow rule of demo-node-1 and demo-node-2.
    const [one, two] = agents;
    let rtt: number | undefined;
    for (let i = 0; i < 3 && rtt === undefined; i++) rtt = await one!.iface.ping(two!.identity.mesh_ip, 3000);
    expect(rtt).toBeDefined();
    await page.getByRole('link', { name: 'Policy' }).click();
    const packets = async () => {
      await page.reload();
      return (await page.locator('section[aria-labelledby="p-default"] tr[data-rule] .packets').allTextContents()).reduce((n, t) => n + Number(t), 0);
    };
    await expect.poll(packets, { timeout: 10_000 }).toBeGreaterThan(0);
    await shot('4-policy-counters');

    // Tokens: create with a TTL (shown once), then revoke.
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Valid for').fill('15m');
    await page.getByLabel('Labels').fill('role=web');
    await page.getByRole('button', { name: 'Create token' }).click();
    const shown = (await page.locator('#new-token').textContent())!.trim();
    expect(shown.length).toBeGreaterThan(20);
    const id = (await page.locator('#created-h').textContent())!.replace(/.* /, '');
    await shot('5-token-created');
    await page.getByRole('button', { name: `Revoke token ${id}` }).click();
    await page.waitForURL(`${cp.url}/ui/tokens`);
    expect(await page.locator(`tr[data-token="${id}"] .state`).textContent()).toBe('revoked');
    expect(await page.content()).not.toContain(shown);
    expect(cp.store.db.prepare('SELECT revoked_at IS NOT NULL FROM tokens WHERE hash LIKE ?').pluck().get(`${id}%`)).toBe(1);
    await shot('6-token-revoked');

    // Page weight (bytes of the document and what it loads) and first paint, per page.
    const metrics: Record<string, { bytes: number; firstContentfulPaintMs: number | undefined }> = {};
    for (const path of ['/ui/', '/ui/graph', '/ui/policy', '/ui/tokens', '/ui/bridges', '/ui/actions']) {
      await page.goto(cp.url + path);
      await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0, undefined, { timeout: 5000 }).catch(() => undefined);
      // A string: the test's TypeScript has no DOM types; this runs in the page.
      metrics[path] = (await page.evaluate(`(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource').filter((r) => !r.name.endsWith('/ui/graph.svg'));
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return { bytes: nav.encodedBodySize + res.reduce((n, r) => n + r.encodedBodySize, 0), firstContentfulPaintMs: fcp === undefined ? undefined : Math.round(fcp.startTime) };
      })()`)) as (typeof metrics)[string];
    }

    // Log out: back at the login form, and the old session opens nothing.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${cp.url}/ui/login`);
    await page.goto(`${cp.url}/ui/tokens`);
    expect(page.url()).toBe(`${cp.url}/ui/login`);
    await shot('7-logged-out');
    expect(consoleErrors.filter((e) => !e.includes('EventSource'))).toEqual([]); // no CSP violations

    writeFileSync(join(ARTIFACTS, 'metrics.json'), JSON.stringify({ pages: metrics, nodeUpToGraphDirectMs: liveMs }, null, 2));
    process.stdout.write(`dashboard screenshots and metrics: ${ARTIFACTS} (graph: ${graphShot})\n${JSON.stringify({ pages: metrics, nodeUpToGraphDirectMs: liveMs })}\n`);
  }, 120_000);
});
