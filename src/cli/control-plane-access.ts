// `plexd-userspace control-plane access|site|bridge ...`: the bridge access side (issue 15,
// docs/control-plane.md "User access and site-to-site"): user-access clients with their wg-quick
// configs (optionally as a terminal QR code for the WireGuard mobile apps), site-to-site tunnels
// with the partner gateway's config, and a bridge's NAT and access-subnet settings.

import { addSite, addUser, configureBridge, listSites, listUsers, removeSite, removeUser, siteSubnets, tunnelInterface } from '../control-plane/access.js';
import { formatIpv4 } from '../control-plane/mesh-ip.js';
import { DEFAULT_PROJECT } from '../control-plane/store.js';
import { EXIT } from './constants.js';
import { DB_OPTIONS, dbArgs, need, parse, print, withStore } from './control-plane-common.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

/** The usage lines of these commands (part of `control-plane --help`). */
export const ACCESS_USAGE = `  access add NAME --db FILE --bridge NODE_ID [--public-key KEY] [--endpoint-host HOST] [--json|--qr]
        a user-access client of a bridge: prints its wg-quick config (a new key pair, or a
        placeholder for the private key of --public-key); --qr as a terminal QR code
  access list --db FILE [--project ID] [--json]
  access remove NAME --db FILE [--project ID]
  site add NAME --db FILE --bridge NODE_ID --public-key KEY --endpoint HOST:PORT
        --subnets CIDR[,CIDR...] [--endpoint-host HOST] [--json]
        a site-to-site tunnel to a partner gateway (at most 10 per bridge): prints the bridge
        side and the gateway's wg-quick config
  site list --db FILE [--project ID] [--json]
  site remove NAME --db FILE [--project ID]
  bridge config NODE_ID --db FILE [--enable-nat true|false] [--access-subnets CIDR,...|""]
        masquerade user traffic (default true), subnets behind the bridge's access side;
        without options prints the settings
`;

function one(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`${what} takes one NAME`);
  return positionals[0]!;
}

function project(values: Record<string, string | boolean | undefined>): string {
  return typeof values.project === 'string' ? values.project : DEFAULT_PROJECT;
}

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `control-plane access ...`; resolves to the exit code (errors are thrown to runControlPlane). */
export async function access(args: readonly string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb !== 'add' && verb !== 'list' && verb !== 'remove') throw new UsageError(`expected access add, access list or access remove, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, bridge: { type: 'string' }, 'public-key': { type: 'string' }, 'endpoint-host': { type: 'string' }, project: { type: 'string' }, json: { type: 'boolean' }, qr: { type: 'boolean' } });
  const db = dbArgs(values);
  if (verb === 'add') {
    const name = one(positionals, 'access add');
    const bridgeId = need(values.bridge, '--bridge');
    if (values.json === true && values.qr === true) throw new UsageError('--json and --qr: choose one');
    const publicKey = str(values['public-key']);
    const endpointHost = str(values['endpoint-host']);
    const out = withStore(db, (s) => addUser(s, { name, bridgeId, ...(publicKey === undefined ? {} : { publicKey }), ...(endpointHost === undefined ? {} : { endpointHost }) }));
    if (values.json === true) print(JSON.stringify({ name: out.name, address: out.address, config: out.config }));
    else if (values.qr === true) {
      // Loaded only here: the QR encoder is needed by this one flag.
      const { encodeQR } = await import('qr');
      print(encodeQR(out.config, 'ascii', { ecc: 'low' }));
      process.stderr.write(`user ${out.name}: ${out.address}; scan with the WireGuard app (the code holds the private key: do not share it)\n`);
    } else {
      print(out.config);
      process.stderr.write(`user ${out.name}: ${out.address}; save the config above as e.g. /etc/wireguard/plexd.conf and run wg-quick up plexd\n`);
    }
    return EXIT.ok;
  }
  if (verb === 'list') {
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
    const rows = withStore(db, (s) => listUsers(s.db, project(values))).map((u) => ({
      name: u.name,
      address: formatIpv4(u.address_num),
      bridge_id: u.bridge_id,
      public_key: u.public_key,
      created_at: new Date(u.created_at).toISOString(),
    }));
    if (values.json === true) print(JSON.stringify(rows));
    else print(formatTable(['NAME', 'ADDRESS', 'BRIDGE', 'PUBLIC_KEY', 'CREATED'], rows.map((r) => [r.name, r.address, r.bridge_id, r.public_key, r.created_at])));
    return EXIT.ok;
  }
  const name = one(positionals, 'access remove');
  if (!withStore(db, (s) => removeUser(s, project(values), name))) {
    process.stderr.write(`control-plane: no user ${JSON.stringify(name)}\n`);
    return EXIT.setupFailed;
  }
  print(`removed user ${name}`);
  return EXIT.ok;
}

/** `control-plane site ...`. */
export function site(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'add' && verb !== 'list' && verb !== 'remove') throw new UsageError(`expected site add, site list or site remove, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, bridge: { type: 'string' }, 'public-key': { type: 'string' }, endpoint: { type: 'string' }, subnets: { type: 'string' }, 'endpoint-host': { type: 'string' }, project: { type: 'string' }, json: { type: 'boolean' } });
  const db = dbArgs(values);
  if (verb === 'add') {
    const name = one(positionals, 'site add');
    const req = {
      name,
      bridgeId: need(values.bridge, '--bridge'),
      publicKey: need(values['public-key'], '--public-key'),
      endpoint: need(values.endpoint, '--endpoint'),
      subnets: need(values.subnets, '--subnets'),
    };
    const endpointHost = str(values['endpoint-host']);
    const out = withStore(db, (s) => addSite(s, { ...req, ...(endpointHost === undefined ? {} : { endpointHost }) }));
    if (values.json === true) {
      print(JSON.stringify(out));
      return EXIT.ok;
    }
    print([
      `site ${out.name}: tunnel ${out.tunnel_id} (${out.interface_name}) on the bridge`,
      `bridge public key:  ${out.bridge_public_key}`,
      `bridge listen port: ${out.listen_port}/udp`,
      `route to the tunnel on the partner side: ${out.mesh_cidr}`,
      `subnets behind the partner gateway: ${out.subnets.join(', ')}`,
      '',
      '# wg-quick config for the partner gateway (fill in its private key):',
      out.config,
    ].join('\n'));
    return EXIT.ok;
  }
  if (verb === 'list') {
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
    const rows = withStore(db, (s) => listSites(s.db, project(values))).map((x) => ({
      name: x.name,
      bridge_id: x.bridge_id,
      tunnel_id: x.tunnel_id,
      interface_name: tunnelInterface(x.tunnel_id),
      listen_port: x.listen_port,
      endpoint: x.endpoint,
      public_key: x.public_key,
      subnets: siteSubnets(x),
      created_at: new Date(x.created_at).toISOString(),
    }));
    if (values.json === true) print(JSON.stringify(rows));
    else print(formatTable(['NAME', 'BRIDGE', 'INTERFACE', 'PORT', 'ENDPOINT', 'SUBNETS'], rows.map((r) => [r.name, r.bridge_id, r.interface_name, String(r.listen_port), r.endpoint, r.subnets.join(',')])));
    return EXIT.ok;
  }
  const name = one(positionals, 'site remove');
  if (!withStore(db, (s) => removeSite(s, project(values), name))) {
    process.stderr.write(`control-plane: no site ${JSON.stringify(name)}\n`);
    return EXIT.setupFailed;
  }
  print(`removed site ${name}`);
  return EXIT.ok;
}

/** `control-plane bridge config ...`. */
export function bridge(args: readonly string[]): number {
  const [verb, ...rest] = args;
  if (verb !== 'config') throw new UsageError(`expected bridge config, got ${JSON.stringify(verb ?? '')}`);
  const { values, positionals } = parse(rest, { ...DB_OPTIONS, 'enable-nat': { type: 'string' }, 'access-subnets': { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('bridge config takes one NODE_ID');
  const nat = str(values['enable-nat']);
  if (nat !== undefined && nat !== 'true' && nat !== 'false') throw new UsageError(`--enable-nat: expected true or false, got ${JSON.stringify(nat)}`);
  const subnets = str(values['access-subnets']);
  const out = withStore(dbArgs(values), (s) => configureBridge(s, positionals[0]!, { ...(nat === undefined ? {} : { enableNat: nat === 'true' }), ...(subnets === undefined ? {} : { accessSubnets: subnets }) }));
  if (values.json === true) print(JSON.stringify(out));
  else print(`bridge ${out.node_id}: enable_nat ${out.enable_nat}, access_subnets ${out.access_subnets.join(',') || '(none)'}`);
  return EXIT.ok;
}
