// The agent side of public ingress (docs/bridge.md "Public ingress"): with bridge.ingress_enabled a
// bridge agent turns each state's bridge.ingress block into the ingress engine's rules
// (src/bridge/ingress/ingress.ts), with ACME certificates (src/bridge/ingress/acme.ts) when
// bridge.acme_enabled. Reconciles are serialized; a block with enabled false, null or absent
// removes every rule (upstream: "present-but-nullable").

import { readFileSync } from 'node:fs';
import type { IngressConfig } from '../api/types.js';
import { AcmeManager } from '../bridge/ingress/acme.js';
import { Ingress } from '../bridge/ingress/ingress.js';
import type { Logger } from '../log/logger.js';
import { ConfigError, type IngressSettings } from './config.js';

/** The ingress (and ACME) of a bridge agent. */
export class BridgeIngress {
  readonly ingress: Ingress;
  readonly acme: AcmeManager | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(ingress: Ingress, acme: AcmeManager | undefined) {
    this.ingress = ingress;
    this.acme = acme;
  }

  /**
   * Builds the engine from the settings; listeners open with the first rules. Throws ConfigError
   * when bridge.acme_ca_file cannot be read or bridge.acme_cache_dir cannot be created.
   * `httpPort`: the plain-HTTP port (default 80; tests).
   */
  static create(settings: IngressSettings, log: Logger, httpPort?: number | null): BridgeIngress {
    let acme: AcmeManager | undefined;
    if (settings.acmeEnabled) {
      let caPem: string | undefined;
      if (settings.acmeCaFile !== undefined) {
        try {
          caPem = readFileSync(settings.acmeCaFile, 'utf8');
        } catch (err) {
          throw new ConfigError('bridge.acme_ca_file', `cannot read ${settings.acmeCaFile}: ${(err as Error).message}`, { cause: err });
        }
      }
      try {
        acme = new AcmeManager({
          directoryUrl: settings.acmeDirectoryUrl,
          cacheDir: settings.acmeCacheDir,
          allowedHosts: settings.acmeAllowedHosts,
          log: log.child('(acme) '),
          ...(settings.acmeEmail !== undefined ? { email: settings.acmeEmail } : {}),
          ...(caPem !== undefined ? { caPem } : {}),
        });
      } catch (err) {
        throw new ConfigError('bridge.acme_cache_dir', `cannot create ${settings.acmeCacheDir}: ${(err as Error).message}`, { cause: err });
      }
    }
    const ingress = new Ingress({
      log,
      maxRules: settings.maxRules,
      dialTimeoutMs: settings.dialTimeoutS * 1000,
      ...(acme !== undefined ? { certificates: acme } : {}),
      ...(httpPort !== undefined ? { httpPort } : {}),
    });
    return new BridgeIngress(ingress, acme);
  }

  /** Applies a state's bridge.ingress block (after the ones before it). */
  reconcile(block: IngressConfig | null | undefined): Promise<unknown> {
    const rules = block?.enabled === true ? block.rules : null;
    this.#queue = this.#queue.then(() => this.ingress.reconcile(rules)).catch(() => undefined);
    return this.#queue;
  }

  /** The status view: the engine's rules and counters, and ACME's hosts. */
  snapshot(): Record<string, unknown> {
    return { ...this.ingress.snapshot(), acme: this.acme?.snapshot() ?? null };
  }

  /** Closes listeners, connections and the renewal timer. */
  close(): void {
    this.acme?.close();
    this.ingress.close();
  }
}
