// A strict reader of wg-quick(8) configs for tests: [Interface] then [Peer] sections of
// `Key = Value` lines, comments from '#'; keys must be ones wg-quick/wg(8) know, each at most once
// per section. Throws naming the line, so a printed config that wg-quick would refuse fails a test.

const INTERFACE_KEYS = new Set(['PrivateKey', 'ListenPort', 'FwMark', 'Address', 'DNS', 'MTU', 'Table', 'PreUp', 'PostUp', 'PreDown', 'PostDown', 'SaveConfig']);
const PEER_KEYS = new Set(['PublicKey', 'PresharedKey', 'AllowedIPs', 'Endpoint', 'PersistentKeepalive']);

export interface WgQuickConfig {
  readonly interface: Record<string, string>;
  readonly peers: Record<string, string>[];
}

export function parseWgQuick(text: string): WgQuickConfig {
  let iface: Record<string, string> | undefined;
  const peers: Record<string, string>[] = [];
  let section: Record<string, string> | undefined;
  let keys = INTERFACE_KEYS;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    if (line === '[Interface]') {
      if (iface !== undefined) throw new Error(`line ${i + 1}: a second [Interface]`);
      section = iface = {};
      keys = INTERFACE_KEYS;
      return;
    }
    if (line === '[Peer]') {
      section = {};
      peers.push(section);
      keys = PEER_KEYS;
      return;
    }
    const m = /^([A-Za-z]+)\s*=\s*(.+)$/.exec(line);
    if (m === null || section === undefined) throw new Error(`line ${i + 1}: expected Key = Value inside a section, got ${JSON.stringify(raw)}`);
    if (!keys.has(m[1]!)) throw new Error(`line ${i + 1}: unknown key ${m[1]}`);
    if (Object.hasOwn(section, m[1]!)) throw new Error(`line ${i + 1}: ${m[1]} twice`);
    section[m[1]!] = m[2]!;
  });
  if (iface === undefined) throw new Error('no [Interface] section');
  return { interface: iface, peers };
}
