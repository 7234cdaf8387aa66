// Public ingress of a bridge (issue 16, upstream bridge.ingress): one TCP listener per listen_port
// serves many hostnames. Each connection's ClientHello (client-hello.ts) is read without
// terminating; its SNI picks the rule. passthrough: the bytes go untouched to target_addr (the
// target holds its own certificate). terminate: TLS >= 1.2 with the rule's certificate, plain TCP
// to the target. acme: the same with a certificate from the CertificateSource (acme.ts), which also
// answers TLS-ALPN-01 (RFC 8737) on this port and HTTP-01 on the HTTP port, where plain HTTP for a
// hostname with a rule is redirected to HTTPS. Unknown or absent SNI, a malformed or oversized
// ClientHello: the connection is closed and counted; nothing else is affected. reconcile() makes
// the listeners equal to the rules: other rules' connections survive, a removed rule's are closed.

import { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { IngressRule } from '../../api/types.js';
import type { Logger } from '../../log/logger.js';
import { HELLO_REFUSALS, isRoutableHostname, MAX_HELLO_BUFFER, parseClientHello, type HelloRefusal } from './client-hello.js';

/** upstream's bridge.max_ingress_rules default. */
export const DEFAULT_MAX_INGRESS_RULES = 20;
/** upstream's bridge.ingress_dial_timeout default (ms). */
export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
/** A client must finish its ClientHello within this long (ms). */
export const HELLO_TIMEOUT_MS = 10_000;
/** Connections still sending their ClientHello, at most (beyond: refused as `busy`). */
export const MAX_PENDING_HELLOS = 1024;
/** The ALPN protocol of TLS-ALPN-01 (RFC 8737 3). */
export const ACME_TLS_ALPN = 'acme-tls/1';

/** Why a connection was closed before it reached a rule (counted). */
export const INGRESS_REFUSALS = [...HELLO_REFUSALS, 'unknown_sni', 'no_certificate', 'hello_timeout', 'busy'] as const;
/** One of INGRESS_REFUSALS. */
export type IngressRefusal = (typeof INGRESS_REFUSALS)[number];

/** Certificates the ingress does not hold itself: ACME (acme.ts). */
export interface CertificateSource {
  /** The secure context for `hostname`'s issued certificate, or undefined while there is none. */
  contextFor(hostname: string): SecureContext | undefined;
  /** The TLS-ALPN-01 challenge certificate (RFC 8737) being validated for `hostname`, if any. */
  alpnChallengeFor(hostname: string): SecureContext | undefined;
  /** The HTTP-01 key authorization for `token` (RFC 8555 8.3), if a challenge is pending. */
  httpChallenge(token: string): string | undefined;
  /** The hostnames of the acme rules in force (issues, renews, forgets the rest); `http01`: the
   *  HTTP port is listening, so HTTP-01 can be answered. */
  want(hostnames: readonly string[], http01: boolean): void;
  /** The certificate state of `hostname` for the status document. */
  describe(hostname: string): Record<string, unknown> | null;
}

/** Options of {@link Ingress}. */
export interface IngressOptions {
  readonly log: Logger;
  /** Address of the listeners (default 0.0.0.0). */
  readonly address?: string;
  /** bridge.max_ingress_rules (20). */
  readonly maxRules?: number;
  /** bridge.ingress_dial_timeout (ms, 10 s). */
  readonly dialTimeoutMs?: number;
  /** The plain-HTTP port (HTTP-01, redirects); default 80; 0: any free port (tests); null: none. */
  readonly httpPort?: number | null;
  /** ACME certificates (bridge.acme_enabled); without it acme rules are refused. */
  readonly certificates?: CertificateSource;
  /** ClientHello deadline (ms; default HELLO_TIMEOUT_MS). */
  readonly helloTimeoutMs?: number;
}

/** Per-rule counters (status). Bytes: in = client -> target, out = target -> client. */
export interface RuleCounters {
  connections: number;
  active: number;
  bytes_in: number;
  bytes_out: number;
  dial_failures: number;
  dial_timeouts: number;
  tls_failures: number;
}

interface RuleState {
  readonly rule: IngressRule;
  readonly hostname: string;
  readonly target: { readonly host: string; readonly port: number };
  /** terminate: the rule's own context. */
  readonly context: SecureContext | undefined;
  readonly notAfter: string | null;
  readonly counters: RuleCounters;
  readonly sockets: Set<Socket>;
}

interface PortListener {
  readonly server: Server;
  /** hostname -> rule */
  readonly routes: Map<string, RuleState>;
  ready: Promise<string | undefined>;
}

const zeroCounters = (): RuleCounters => ({ connections: 0, active: 0, bytes_in: 0, bytes_out: 0, dial_failures: 0, dial_timeouts: 0, tls_failures: 0 });

/** "a.b.c.d:port" / "[v6]:port" -> host and port (the parser already checked the form). */
function splitTarget(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

/** The public ingress engine of a bridge. */
export class Ingress {
  /** Connections closed before reaching a rule, by reason. */
  readonly refused: Record<IngressRefusal, number> = Object.fromEntries(INGRESS_REFUSALS.map((r) => [r, 0])) as Record<IngressRefusal, number>;
  readonly #opts: IngressOptions;
  readonly #log: Logger;
  readonly #listeners = new Map<number, PortListener>();
  readonly #rules = new Map<string, RuleState>();
  /** Rules refused at the last reconcile: rule_id -> why. */
  #refusedRules = new Map<string, { rule: IngressRule; why: string }>();
  #http: { server: HttpServer; port: number } | undefined;
  #httpError: string | undefined;
  #pending = 0;
  /** Connections still sending their ClientHello (closed by close()). */
  readonly #hellos = new Set<Socket>();
  #closed = false;

  constructor(opts: IngressOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  /** The ports listening now (bound port for 0). */
  ports(): number[] {
    return [...this.#listeners.keys()];
  }

  /** The HTTP port's bound number, or undefined when it is not listening. */
  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  /**
   * Makes the rules in force equal to `rules` (a state's bridge.ingress.rules; empty or null:
   * none). Unchanged rules keep their connections and counters; a removed rule's connections are
   * closed and its hostname refused from now on. Resolves with the rules refused (rule_id -> why):
   * invalid hostname, duplicate hostname on a port, over max_ingress_rules, a terminate rule
   * without a usable certificate, acme without ACME, or a port that cannot be bound.
   */
  async reconcile(rules: readonly IngressRule[] | null): Promise<Map<string, string>> {
    if (this.#closed) return new Map();
    const refused = new Map<string, { rule: IngressRule; why: string }>();
    const want = new Map<string, RuleState>();
    const byPortHost = new Set<string>();
    const max = this.#opts.maxRules ?? DEFAULT_MAX_INGRESS_RULES;
    for (const rule of rules ?? []) {
      const why = this.#check(rule, byPortHost, want.size, max);
      if (typeof why === 'string') {
        refused.set(rule.rule_id, { rule, why });
        continue;
      }
      byPortHost.add(`${rule.listen_port}/${why.hostname}`);
      want.set(rule.rule_id, why);
    }
    // Drop removed or changed rules first (a changed rule is a new rule with the old counters).
    for (const [id, old] of this.#rules) {
      const next = want.get(id);
      if (next !== undefined && sameRule(old.rule, next.rule)) {
        want.set(id, old);
        continue;
      }
      this.#rules.delete(id);
      this.#listeners.get(old.rule.listen_port)?.routes.delete(old.hostname);
      if (next === undefined) {
        for (const s of old.sockets) s.destroy();
        this.#log.info(`ingress: rule ${id} (${old.hostname}) removed`);
      } else {
        Object.assign(next.counters, old.counters, { active: next.counters.active });
      }
    }
    for (const [id, st] of want) {
      if (this.#rules.has(id)) continue;
      const l = this.#listener(st.rule.listen_port);
      l.routes.set(st.hostname, st);
      this.#rules.set(id, st);
      this.#log.info(`ingress: rule ${id}: ${st.hostname}:${st.rule.listen_port} -> ${st.rule.target_addr} (${st.rule.mode})`);
    }
    // Close ports no rule uses any more; in-flight connections of kept rules are not on them.
    for (const [port, l] of this.#listeners) {
      if (l.routes.size === 0) {
        l.server.close();
        this.#listeners.delete(port);
      }
    }
    for (const [port, l] of this.#listeners) {
      const err = await l.ready;
      if (err === undefined) continue;
      for (const st of l.routes.values()) {
        refused.set(st.rule.rule_id, { rule: st.rule, why: `listen_port ${port}: ${err}` });
        this.#rules.delete(st.rule.rule_id);
      }
      this.#listeners.delete(port);
    }
    if (this.#closed) return new Map();
    await this.#reconcileHttp();
    this.#opts.certificates?.want(
      [...this.#rules.values()].filter((s) => s.rule.mode === 'acme').map((s) => s.hostname),
      this.#http !== undefined,
    );
    this.#refusedRules = refused;
    for (const [id, { why }] of refused) this.#log.error(`ingress: rule ${id} refused: ${why}`);
    return new Map([...refused].map(([id, r]) => [id, r.why]));
  }

  #check(rule: IngressRule, taken: ReadonlySet<string>, count: number, max: number): RuleState | string {
    const hostname = rule.hostname.toLowerCase().replace(/\.$/, '');
    if (!isRoutableHostname(hostname)) return `hostname ${JSON.stringify(rule.hostname)} is not a DNS host name`;
    if (taken.has(`${rule.listen_port}/${hostname}`)) return `hostname ${hostname} already has a rule on port ${rule.listen_port}`;
    if (count >= max) return `more than bridge.max_ingress_rules (${max}) rules`;
    if (rule.listen_port === this.#opts.httpPort) return `listen_port ${rule.listen_port} is the HTTP port (HTTP-01 and redirects)`;
    let context: SecureContext | undefined;
    let notAfter: string | null = null;
    if (rule.mode === 'terminate') {
      if (rule.cert_pem === undefined || rule.key_pem === undefined) return 'mode terminate needs cert_pem and key_pem';
      try {
        context = createSecureContext({ cert: rule.cert_pem, key: rule.key_pem, minVersion: 'TLSv1.2' });
        notAfter = new Date(new X509Certificate(rule.cert_pem).validTo).toISOString();
      } catch (err) {
        return `cert_pem/key_pem unusable: ${(err as Error).message}`;
      }
    }
    if (rule.mode === 'acme' && this.#opts.certificates === undefined) return 'mode acme but ACME is off on this bridge (bridge.acme_enabled)';
    return { rule, hostname, target: splitTarget(rule.target_addr), context, notAfter, counters: zeroCounters(), sockets: new Set() };
  }

  #listener(port: number): PortListener {
    const have = this.#listeners.get(port);
    if (have !== undefined) return have;
    const server = createServer({ pauseOnConnect: false }, (sock) => this.#accept(port, sock));
    server.maxConnections = 10_000;
    const ready = new Promise<string | undefined>((resolve) => {
      server.once('error', (err) => resolve(err.message));
      // close() before the bind completes: 'listening' never comes, and reconcile() awaits this.
      server.once('close', () => resolve('closed'));
      server.listen({ port, host: this.#opts.address ?? '0.0.0.0' }, () => {
        this.#log.info(`ingress: listening on ${this.#opts.address ?? '0.0.0.0'}:${port}`);
        resolve(undefined);
      });
    });
    const l: PortListener = { server, routes: new Map(), ready };
    this.#listeners.set(port, l);
    return l;
  }

  #refuse(sock: Socket, reason: IngressRefusal): void {
    this.refused[reason]++;
    sock.destroy();
  }

  // Reads the ClientHello (bounded in bytes and time), then routes by its SNI.
  #accept(port: number, sock: Socket): void {
    if (this.#pending >= MAX_PENDING_HELLOS) return this.#refuse(sock, 'busy');
    this.#pending++;
    this.#hellos.add(sock);
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#pending--;
      this.#hellos.delete(sock);
      clearTimeout(timer);
      sock.off('data', onData);
    };
    const timer = setTimeout(() => {
      finish();
      this.#refuse(sock, 'hello_timeout');
    }, this.#opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const r = parseClientHello(buf);
      if (r.kind === 'need-more' && buf.length < MAX_HELLO_BUFFER) return;
      finish();
      sock.pause();
      if (r.kind === 'need-more') return this.#refuse(sock, 'oversized');
      if (r.kind === 'refuse') return this.#refuse(sock, r.reason satisfies HelloRefusal);
      this.#route(port, sock, buf, r.sni, r.alpn);
    };
    sock.on('data', onData);
    sock.on('error', () => undefined);
    sock.on('close', finish);
  }

  #route(port: number, sock: Socket, hello: Buffer, sni: string, alpn: readonly string[]): void {
    const st = this.#listeners.get(port)?.routes.get(sni);
    if (st === undefined) return this.#refuse(sock, 'unknown_sni');
    if (alpn.includes(ACME_TLS_ALPN) && st.rule.mode === 'acme') {
      // RFC 8737 3: the validation handshake only; no application data follows.
      const ctx = this.#opts.certificates?.alpnChallengeFor(sni);
      if (ctx === undefined) return this.#refuse(sock, 'no_certificate');
      sock.unshift(hello);
      const tls = new TLSSocket(sock, { isServer: true, secureContext: ctx, ALPNProtocols: [ACME_TLS_ALPN] });
      tls.on('error', () => sock.destroy());
      tls.on('secure', () => tls.end());
      // Not a rule's connection and no longer a pending hello: without a deadline of its own a
      // client could hold it open forever (as many as it likes while a challenge is pending).
      const stall = setTimeout(() => sock.destroy(), this.#opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
      sock.once('close', () => clearTimeout(stall));
      return;
    }
    const c = st.counters;
    c.connections++;
    c.active++;
    st.sockets.add(sock);
    sock.once('close', () => {
      c.active--;
      st.sockets.delete(sock);
    });
    if (st.rule.mode === 'passthrough') {
      this.#dial(st, sock, (up) => {
        c.bytes_in += hello.length;
        up.write(hello);
        this.#splice(st, sock, up);
        sock.resume();
      });
      return;
    }
    const ctx = st.context ?? this.#opts.certificates?.contextFor(sni);
    if (ctx === undefined) {
      c.active--;
      c.connections--;
      st.sockets.delete(sock);
      return this.#refuse(sock, 'no_certificate');
    }
    sock.unshift(hello);
    const tls = new TLSSocket(sock, { isServer: true, secureContext: ctx });
    tls.on('error', () => {
      if (!tls.encrypted || tls.getProtocol() === null) c.tls_failures++;
      sock.destroy();
    });
    // The handshake shares the ClientHello's deadline: a client stalling mid-handshake is closed.
    const stall = setTimeout(() => {
      c.tls_failures++;
      sock.destroy();
    }, this.#opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
    sock.once('close', () => clearTimeout(stall));
    tls.once('secure', () => {
      clearTimeout(stall);
      this.#dial(st, tls, (up) => this.#splice(st, tls, up));
    });
    // No sock.resume(): the TLSSocket reads the handle (and the unshifted hello) itself; a resumed
    // net.Socket would take the bytes from it.
  }

  /** Connects to the rule's target within the dial timeout; `down` is closed on failure. */
  #dial(st: RuleState, down: Socket, ready: (up: Socket) => void): void {
    const up = netConnect({ host: st.target.host, port: st.target.port });
    const timer = setTimeout(() => {
      st.counters.dial_timeouts++;
      this.#log.verbose(`ingress: ${st.hostname}: ${st.rule.target_addr} did not answer within the dial timeout`);
      up.destroy();
      down.destroy();
    }, this.#opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      st.counters.dial_failures++;
      this.#log.verbose(`ingress: ${st.hostname}: dial ${st.rule.target_addr} failed: ${err.message}`);
      down.destroy();
    };
    up.once('error', onError);
    down.once('close', () => {
      clearTimeout(timer);
      up.destroy();
    });
    up.once('connect', () => {
      clearTimeout(timer);
      up.off('error', onError);
      up.setNoDelay(true);
      ready(up);
    });
  }

  /** Copies both ways with byte counts; either side closing closes the other. */
  #splice(st: RuleState, down: Socket, up: Socket): void {
    const c = st.counters;
    down.on('data', (d: Buffer) => (c.bytes_in += d.length));
    up.on('data', (d: Buffer) => (c.bytes_out += d.length));
    down.pipe(up);
    up.pipe(down);
    up.on('error', () => down.destroy());
    down.on('error', () => up.destroy());
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
  }

  // The plain-HTTP port: open while a rule exists (HTTP-01 answers, redirects to HTTPS).
  async #reconcileHttp(): Promise<void> {
    const port = this.#opts.httpPort === undefined ? 80 : this.#opts.httpPort;
    if (port === null) return;
    if (this.#rules.size === 0) {
      this.#http?.server.close();
      this.#http?.server.closeAllConnections();
      this.#http = undefined;
      return;
    }
    if (this.#http !== undefined) return;
    const server = createHttpServer({ maxHeaderSize: 8192, requestTimeout: 10_000 }, (req, res) => this.#onHttp(req, res));
    const err = await new Promise<string | undefined>((resolve) => {
      server.once('error', (e) => resolve(e.message));
      server.listen({ port, host: this.#opts.address ?? '0.0.0.0' }, () => resolve(undefined));
    });
    if (this.#closed) {
      server.close(); // close() came while it was binding: it must not outlive the ingress
      return;
    }
    if (err !== undefined) {
      if (this.#httpError !== err) this.#log.error(`ingress: HTTP port ${port} not open (no HTTP-01, no redirects): ${err}`);
      this.#httpError = err;
      return;
    }
    this.#httpError = undefined;
    const addr = server.address();
    this.#http = { server, port: typeof addr === 'object' && addr !== null ? addr.port : port };
  }

  #onHttp(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const prefix = '/.well-known/acme-challenge/';
    if (url.startsWith(prefix)) {
      const answer = this.#opts.certificates?.httpChallenge(url.slice(prefix.length));
      res.writeHead(answer === undefined ? 404 : 200, { 'content-type': 'text/plain' }).end(answer ?? 'not found\n');
      return;
    }
    const host = (req.headers.host ?? '').toLowerCase().replace(/:[0-9]+$/, '').replace(/\.$/, '');
    const st = [...this.#rules.values()].filter((s) => s.hostname === host).sort((a, b) => (a.rule.listen_port === 443 ? -1 : b.rule.listen_port === 443 ? 1 : 0))[0];
    if (st === undefined || !url.startsWith('/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such host\n');
      return;
    }
    const port = st.rule.listen_port === 443 ? '' : `:${st.rule.listen_port}`;
    res.writeHead(301, { location: `https://${host}${port}${url}`, 'content-type': 'text/plain' }).end('moved\n');
  }

  /** The status view: listeners, refusals, and each rule with counters and certificate expiry. */
  snapshot(): Record<string, unknown> {
    return {
      listeners: [...this.#listeners.keys()],
      http_port: this.#http?.port ?? null,
      http_error: this.#httpError ?? null,
      refused: { ...this.refused },
      pending_hellos: this.#pending,
      rules: [
        ...[...this.#rules.values()].map((s) => ({
          rule_id: s.rule.rule_id,
          hostname: s.hostname,
          listen_port: s.rule.listen_port,
          target_addr: s.rule.target_addr,
          mode: s.rule.mode,
          state: 'active',
          ...s.counters,
          certificate: s.rule.mode === 'terminate' ? { source: 'rule', not_after: s.notAfter } : s.rule.mode === 'acme' ? (this.#opts.certificates?.describe(s.hostname) ?? null) : null,
        })),
        ...[...this.#refusedRules.values()].map(({ rule, why }) => ({ rule_id: rule.rule_id, hostname: rule.hostname, listen_port: rule.listen_port, mode: rule.mode, state: 'refused', error: why })),
      ],
    };
  }

  /** Closes the listeners and every connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of this.#listeners.values()) l.server.close();
    for (const st of this.#rules.values()) for (const s of st.sockets) s.destroy();
    for (const s of [...this.#hellos]) s.destroy();
    this.#listeners.clear();
    this.#rules.clear();
    this.#http?.server.close();
    this.#http?.server.closeAllConnections();
    this.#http = undefined;
  }
}

function sameRule(a: IngressRule, b: IngressRule): boolean {
  return a.hostname === b.hostname && a.listen_port === b.listen_port && a.target_addr === b.target_addr && a.mode === b.mode && a.cert_pem === b.cert_pem && a.key_pem === b.key_pem;
}
