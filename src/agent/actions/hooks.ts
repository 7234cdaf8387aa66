// Hooks (docs/operations.md "Hooks"; upstream remote-actions-hooks.md "runHook", "DiscoverHooks",
// "Hook Integrity Pinning"): executables in actions.hooks_dir run as actions. A hook's SHA-256 is
// pinned the first time this process discovers it and reported in the capabilities manifest; a
// run needs the file to still hash to the pin and, when the control plane sends one, to the digest
// it approved. Run with no shell (spawn, shell: false), no arguments, a minimal environment and
// parameters only as PLEXD_PARAM_<KEY> variables, under the action's deadline.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ActionParam, HookInfo } from '../../api/types.js';

/** A hook's name: a plain file name of [A-Za-z0-9_.-], no "..", not a sidecar (.json). */
const HOOK_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** Largest hook file hashed (bytes) and largest sidecar read. */
export const MAX_HOOK_BYTES = 64 * 1024 * 1024;
const MAX_SIDECAR_BYTES = 64 * 1024;
/** Most hooks one directory may hold (the rest are skipped with a warning). */
export const MAX_HOOKS = 256;

/** Why `name` is not a hook name, or undefined when it is one. Never touches the disk. */
export function hookNameProblem(name: string): string | undefined {
  if (name.includes('/') || name.includes('\\')) return 'contains a path separator';
  if (name.includes('..')) return 'contains ".."';
  if (!HOOK_NAME.test(name)) return 'is not a file name of [A-Za-z0-9_.-] (at most 128, not starting with "." or "-")';
  if (name.endsWith('.json')) return 'is a sidecar (.json) name';
  return undefined;
}

/** "sha256:<hex>" of a file's bytes; throws on a read error or a file over MAX_HOOK_BYTES. */
export function hashFile(path: string): string {
  const st = statSync(path);
  if (st.size > MAX_HOOK_BYTES) throw new Error(`${path} is ${st.size} bytes, more than ${MAX_HOOK_BYTES}`);
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}

/** The environment variable of parameter `key` (upstream: non [A-Za-z0-9_] -> _, uppercased). */
export function paramEnvName(key: string): string {
  return `PLEXD_PARAM_${key.replace(/[^A-Za-z0-9_]/g, '_').toUpperCase()}`;
}

/**
 * The hook's environment: PATH and HOME (inherited), PLEXD_NODE_ID, PLEXD_EXECUTION_ID and a
 * PLEXD_PARAM_* per parameter. Throws when two parameters map to one variable.
 */
export function hookEnv(params: Readonly<Record<string, string>>, ids: { nodeId: string; executionId: string }, inherited: Readonly<Record<string, string | undefined>> = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: inherited.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: inherited.HOME ?? '/', PLEXD_NODE_ID: ids.nodeId, PLEXD_EXECUTION_ID: ids.executionId };
  const from = new Map<string, string>();
  for (const [k, v] of Object.entries(params)) {
    const name = paramEnvName(k);
    const other = from.get(name);
    if (other !== undefined) throw new Error(`parameters ${other} and ${k} both map to ${name}`);
    if (v.includes('\0')) throw new Error(`parameter ${k} contains a NUL byte`);
    from.set(name, k);
    env[name] = v;
  }
  return env;
}

/** Reads `NAME.json` next to a hook: description, parameters, timeout; {} when absent or bad. */
function readSidecar(path: string): { description?: string; parameters?: ActionParam[]; timeout?: string } {
  try {
    if (statSync(path).size > MAX_SIDECAR_BYTES) return {};
    const v = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const out: { description?: string; parameters?: ActionParam[]; timeout?: string } = {};
    if (typeof v.description === 'string') out.description = v.description.slice(0, 1024);
    if (typeof v.timeout === 'string' && /^\d{1,6}(ms|s|m|h)$/.test(v.timeout)) out.timeout = v.timeout;
    if (Array.isArray(v.parameters)) {
      out.parameters = v.parameters.slice(0, 64).flatMap((p: unknown) => {
        const o = p as Record<string, unknown> | null;
        if (o === null || typeof o !== 'object' || typeof o.name !== 'string') return [];
        return [{ name: o.name.slice(0, 128), type: typeof o.type === 'string' ? o.type.slice(0, 32) : 'string', required: o.required === true, ...(typeof o.description === 'string' ? { description: o.description.slice(0, 1024) } : {}) }];
      });
    }
    return out;
  } catch {
    return {};
  }
}

/** Scans `dir` for hooks: regular executable files (symlinks, directories, sidecars and bad names
 *  are skipped; `warn` says why), sorted by name. A missing directory has no hooks. */
export function discoverHooks(dir: string, warn: (m: string) => void = () => {}): HookInfo[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: HookInfo[] = [];
  for (const name of names.sort()) {
    if (name.endsWith('.json')) continue;
    const problem = hookNameProblem(name);
    if (problem !== undefined) {
      warn(`hooks: skipping ${JSON.stringify(name.slice(0, 64))}: name ${problem}`);
      continue;
    }
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isFile() || (st.mode & 0o111) === 0) continue;
      if (out.length >= MAX_HOOKS) {
        warn(`hooks: more than ${MAX_HOOKS} in ${dir}; skipping ${name}`);
        continue;
      }
      const side = readSidecar(`${path}.json`);
      out.push({ name, description: side.description ?? '', source: 'script', checksum: hashFile(path), parameters: side.parameters ?? [], ...(side.timeout ? { timeout: side.timeout } : {}) });
    } catch (err) {
      warn(`hooks: skipping ${name}: ${(err as Error).message}`);
    }
  }
  return out;
}

/**
 * The discovered hooks and the digests pinned at first discovery. The pin never moves for the
 * life of the process: a hook whose bytes change is refused until the agent restarts and
 * re-attests it (upstream "Hook Integrity Pinning").
 */
export class HookRegistry {
  readonly dir: string;
  #hooks: HookInfo[] = [];
  readonly #pins = new Map<string, string>();
  readonly #warn: (m: string) => void;

  constructor(dir: string, warn: (m: string) => void = () => {}) {
    this.dir = dir;
    this.#warn = warn;
  }

  /** Re-scans the directory; returns true when the hook list (names or digests) changed. A
   *  digest that differs from its pin is warned about (an integrity alert). */
  scan(): boolean {
    const before = JSON.stringify(this.#hooks);
    this.#hooks = discoverHooks(this.dir, this.#warn);
    for (const h of this.#hooks) {
      const pin = this.#pins.get(h.name);
      if (pin === undefined) this.#pins.set(h.name, h.checksum);
      else if (pin !== h.checksum) this.#warn(`hooks: integrity alert: ${h.name} changed on disk (pinned ${pin}, now ${h.checksum}); it will not run until the agent restarts`);
    }
    return JSON.stringify(this.#hooks) !== before;
  }

  /** The hooks as the capabilities manifest lists them: each with its pinned digest. */
  list(): HookInfo[] {
    return this.#hooks.map((h) => ({ ...h, checksum: this.#pins.get(h.name) ?? h.checksum }));
  }

  /** Whether the last scan found `name`. */
  has(name: string): boolean {
    return this.#hooks.some((h) => h.name === name);
  }

  /**
   * The path of hook `name` once verified: a valid name, discovered, present, and hashing to its
   * pin and to `approved` when given. Throws with the reason otherwise.
   */
  verify(name: string, approved?: string): string {
    const problem = hookNameProblem(name);
    if (problem !== undefined) throw new Error(`hook name ${problem}`);
    const pin = this.#pins.get(name);
    if (pin === undefined || !this.has(name)) throw new Error(`hook not found: ${name}`);
    const path = join(this.dir, name);
    let now: string;
    try {
      if (!lstatSync(path).isFile()) throw new Error('not a regular file');
      now = hashFile(path);
    } catch (err) {
      throw new Error(`hook not found: ${name} (${(err as Error).message})`, { cause: err });
    }
    if (now !== pin) throw new Error(`hook integrity check failed: ${name} is ${now}, pinned ${pin} at discovery; refusing to run a changed file`);
    if (approved !== undefined && approved !== now) throw new Error(`hook integrity check failed: ${name} is ${now}, the control plane approved ${approved}`);
    return path;
  }
}

/** What a run of a hook or built-in produced. */
export interface RunOutput {
  readonly exitCode: number;
  /** stdout then stderr, at most the cap given. */
  readonly output: Buffer;
  readonly truncated: boolean;
  /** Set when the run did not complete normally (spawn error, killed by the deadline). */
  readonly error?: string;
}

/** Appends chunks up to `cap` bytes; counts what it dropped. */
export class CappedBuffer {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  dropped = 0;
  readonly cap: number;
  constructor(cap: number) {
    this.cap = cap;
  }
  push(chunk: Buffer): void {
    const room = this.cap - this.#size;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#chunks.push(part);
    this.#size += part.length;
    this.dropped += chunk.length - part.length;
  }
  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/**
 * Runs the executable at `path` with no shell and no arguments, environment `env` only, cwd the
 * hooks directory; stdout and stderr each capped to `maxOutputBytes`, the joined output capped
 * again. `signal` aborts it (SIGKILL). Never rejects.
 */
export function runExecutable(path: string, env: Readonly<Record<string, string>>, cwd: string, signal: AbortSignal, maxOutputBytes: number): Promise<RunOutput> {
  return new Promise((resolve) => {
    const out = new CappedBuffer(maxOutputBytes);
    const err = new CappedBuffer(maxOutputBytes);
    let spawnError: string | undefined;
    // Its own process group (detached), so the deadline kills what the hook started too: a
    // grandchild holding stdout open must not keep the run alive.
    const child = spawn(path, [], { shell: false, env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true, windowsHide: true });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    if (signal.aborted) killGroup();
    signal.addEventListener('abort', killGroup, { once: true });
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      spawnError = e.message;
    });
    let done = false;
    const finish = (code: number | null, sig: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', killGroup);
      const joined = Buffer.concat([out.bytes(), err.bytes()]);
      const output = joined.subarray(0, maxOutputBytes);
      const truncated = out.dropped + err.dropped > 0 || joined.length > maxOutputBytes;
      const error = spawnError ?? (signal.aborted ? 'aborted' : sig !== null ? `killed by ${sig}` : undefined);
      resolve({ exitCode: code ?? (error !== undefined ? -1 : 0), output, truncated, ...(error !== undefined ? { error } : {}) });
    };
    child.on('close', finish);
    // Upstream's WaitDelay: once the hook exited, its pipes get 500 ms to drain, then the rest of
    // its group is killed and the streams are dropped.
    child.on('exit', (code, sig) => {
      setTimeout(() => {
        if (done) return;
        killGroup();
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, sig);
      }, 500).unref();
    });
  });
}
