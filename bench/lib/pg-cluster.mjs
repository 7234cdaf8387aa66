// A throwaway PostgreSQL cluster for tests and benches (issue 20): initdb into a fresh temp dir,
// a postmaster on 127.0.0.1 and a free port (trust auth, fsync off), torn down by stop(). No system
// service is used; Debian's `postgresql` package only has to provide the binaries.
//
// initdb and postgres refuse to run as root, so as root every PostgreSQL process runs as the
// `postgres` user (spawn's uid/gid; libuv drops the supplementary groups), in a directory that user
// can reach: $TMPDIR when it is traversable by that user, else /tmp or /var/tmp (CI's clone check
// sets TMPDIR to a 0700 root directory). Nothing outlives us: a process 'exit' hook kills the
// postmaster (SIGKILL) and removes the directory, and a detached watchdog does the same when this
// process dies without running it (SIGKILL of a test worker).

import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';

/** PostgreSQL programs the cluster needs from one bin directory. */
const NEEDED = ['initdb', 'pg_ctl', 'postgres'];

/** The superuser initdb creates; every URL connects as it. */
const SUPERUSER = 'postgres';

/** Seconds pg_ctl waits for a start or stop. */
const PG_CTL_WAIT_S = 30;

const asRoot = process.geteuid?.() === 0;

/** Live clusters, torn down at process exit. */
const live = new Set();
let exitHookInstalled = false;

/**
 * The directory holding initdb, pg_ctl and postgres: the one `initdb` on PATH lives in (symlinks
 * resolved), else the highest-versioned /usr/lib/postgresql/N/bin; undefined when neither exists.
 */
export function findPostgresBin() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const initdb = join(dir, 'initdb');
    if (!existsSync(initdb)) continue;
    const bin = dirname(realpathSync(initdb));
    if (NEEDED.every((p) => existsSync(join(bin, p)))) return bin;
  }
  const root = '/usr/lib/postgresql';
  let versions = [];
  try {
    versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    return undefined;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (NEEDED.every((p) => existsSync(join(bin, p)))) return bin;
  }
  return undefined;
}

/** Why a cluster cannot be started here, or undefined. */
export function postgresUnavailableReason() {
  if (findPostgresBin() === undefined) return 'PostgreSQL binaries (initdb, pg_ctl, postgres) not found: apt-get install postgresql';
  if (asRoot && postgresIds() === undefined) return 'running as root and there is no `postgres` user to run PostgreSQL as';
  return undefined;
}

/** uid/gid of the `postgres` user from /etc/passwd, or undefined. */
function postgresIds() {
  let passwd;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postgres' && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (bound and released; start() retries if someone takes it meanwhile). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** True when `uid` can pass through every directory from `dir` up to /. */
function traversableBy(dir, ids) {
  for (let d = dir; ; d = dirname(d)) {
    const st = statSync(d);
    const bit = st.uid === ids.uid ? 0o100 : st.gid === ids.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/** A fresh directory for the cluster, owned by whoever runs PostgreSQL. */
function makeBaseDir(ids) {
  const candidates = ids === undefined ? [tmpdir()] : [tmpdir(), '/tmp', '/var/tmp'];
  for (const parent of candidates) {
    if (ids !== undefined && !traversableBy(parent, ids)) continue;
    const dir = mkdtempSync(join(parent, 'plexd-pg-'));
    if (ids !== undefined) chownSync(dir, ids.uid, ids.gid);
    return dir;
  }
  throw new Error(`no temp directory the postgres user can reach (tried ${candidates.join(', ')})`);
}

/**
 * Runs a PostgreSQL program (as the postgres user when we are root) to completion within
 * `timeoutMs`; resolves { code, out } (stdout and stderr together), never rejects.
 */
function runPg(argv, { ids, cwd, timeoutMs = 60_000 }) {
  return new Promise((resolve) => {
    const env = { ...process.env, LC_ALL: 'C', TMPDIR: cwd, HOME: cwd };
    for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
    const child = spawn(argv[0], argv.slice(1), {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(ids === undefined ? {} : { uid: ids.uid, gid: ids.gid }),
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, out: out + String(err) });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === null ? -1 : 128), out });
    });
  });
}

/**
 * The pid of the running postmaster of `dataDir` (from postmaster.pid, checked against the
 * process's command line so a reused pid is never taken for it), or undefined.
 */
function postmasterPid(dataDir) {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir) && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when `pid` exists and is not a zombie. */
function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids whose parent is `pid` (the postmaster's backends), from /proc. */
function childrenOf(pid) {
  const out = [];
  let entries = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * SIGKILLs the postmaster of `dataDir` and its children and marks its SysV shared memory segment
 * for removal (a killed postmaster leaves it behind); returns the pids it killed.
 */
function killPostmaster(dataDir) {
  const pid = postmasterPid(dataDir);
  if (pid === undefined) return [];
  const pids = [pid, ...childrenOf(pid)];
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // postmaster.pid line 7: "shmkey shmid".
  const shmid = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[6]?.trim().split(/\s+/)[1];
  if (shmid !== undefined && /^\d+$/.test(shmid)) spawnSync('ipcrm', ['-m', shmid], { stdio: 'ignore' });
  return pids;
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.teardownSync();
  });
}

/**
 * Starts a detached shell that waits for this process to die and then kills the postmaster and
 * removes `base`, for deaths that skip the 'exit' hook. Returns its child process.
 */
function startWatchdog(base, dataDir) {
  const script = `
    while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
    pid=$(head -n 1 '${dataDir}/postmaster.pid' 2>/dev/null)
    shmid=$(sed -n 7p '${dataDir}/postmaster.pid' 2>/dev/null | awk '{ print $2 }')
    if [ -n "$pid" ]; then kill -9 $(cat /proc/[0-9]*/stat 2>/dev/null | awk -v p="$pid" '$4 == p { print $1 }') "$pid" 2>/dev/null; fi
    if [ -n "$shmid" ]; then ipcrm -m "$shmid" 2>/dev/null; fi
    rm -rf '${base}'`;
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

/**
 * Starts a fresh cluster. Options: `port` (default: a free one), `log` (a function receiving the
 * server log's tail on failures; default none). Resolves to a handle:
 * - `url` / `port` / `dataDir` / `dir`: postgres://postgres@127.0.0.1:PORT/postgres, the port, the
 *   data directory and the temp directory holding it (and the unix socket and server log);
 * - `createDatabase(name, { template })`: CREATE DATABASE (a copy of `template` when given, which
 *   must have no open connections), resolves with its URL (names: [a-z_][a-z0-9_]*);
 * - `query(sql, params?, db?)`: runs one statement on a fresh connection, resolves with its rows;
 * - `down({ mode })` / `up()`: stop the server keeping the data ('fast' by default, or
 *   'immediate') / start it again on the same port — an outage for reconnect tests;
 * - `restart()`: down() then up();
 * - `kill()`: SIGKILL the postmaster and its backends (a crash; up() recovers);
 * - `stop()`: stop the server and remove the directory (idempotent).
 * Rejects with the server log's tail when initdb or the start fails.
 */
export async function startPostgres(opts = {}) {
  const bin = findPostgresBin();
  if (bin === undefined) throw new Error('PostgreSQL binaries not found (apt-get install postgresql)');
  const ids = asRoot ? postgresIds() : undefined;
  if (asRoot && ids === undefined) throw new Error('running as root and there is no `postgres` user to run PostgreSQL as');
  installExitHook();
  const base = makeBaseDir(ids);
  const dataDir = join(base, 'data');
  const logFile = join(base, 'postgres.log');
  let port = opts.port ?? (await freePort());
  let watchdog;
  let stopped = false;

  const logTail = () => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '(no server log)';
    }
  };
  const pgCtl = (...args) => runPg([join(bin, 'pg_ctl'), '-D', dataDir, ...args], { ids, cwd: base, timeoutMs: (PG_CTL_WAIT_S + 10) * 1000 });

  const cluster = {
    dir: base,
    dataDir,
    get port() {
      return port;
    },
    get url() {
      return `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`;
    },
    /** Sync teardown for the exit hook: kill, remove, forget. */
    teardownSync() {
      killPostmaster(dataDir);
      rmSync(base, { recursive: true, force: true });
      try {
        if (watchdog?.pid !== undefined) process.kill(watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      live.delete(cluster);
      stopped = true;
    },
    async createDatabase(name, { template } = {}) {
      for (const n of [name, ...(template === undefined ? [] : [template])]) {
        if (!/^[a-z_][a-z0-9_]{0,62}$/.test(n)) throw new RangeError(`expected a database name [a-z_][a-z0-9_]*, got ${JSON.stringify(n)}`);
      }
      await cluster.query(`CREATE DATABASE ${name}${template === undefined ? '' : ` TEMPLATE ${template}`}`);
      return `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`;
    },
    async query(sql, params = [], db = 'postgres') {
      const client = new pg.Client({ connectionString: `postgres://${SUPERUSER}@127.0.0.1:${port}/${db}`, connectionTimeoutMillis: 10_000 });
      client.on('error', () => undefined);
      await client.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async down({ mode = 'fast' } = {}) {
      const r = await pgCtl('stop', '-m', mode, '-w', '-t', String(PG_CTL_WAIT_S));
      if (r.code !== 0 && postmasterPid(dataDir) !== undefined) throw new Error(`pg_ctl stop failed (${r.code}): ${r.out}\n${logTail()}`);
    },
    async up() {
      const r = await pgCtl('start', '-w', '-t', String(PG_CTL_WAIT_S), '-l', logFile, '-o', `-p ${port}`);
      if (r.code !== 0) throw new Error(`pg_ctl start failed (${r.code}): ${r.out}\n${logTail()}`);
    },
    async restart() {
      await cluster.down();
      await cluster.up();
    },
    async kill() {
      const pids = killPostmaster(dataDir);
      const end = Date.now() + 10_000;
      while (pids.some(alive)) {
        if (Date.now() > end) throw new Error(`postgres processes ${pids.filter(alive).join(', ')} survived SIGKILL`);
        await new Promise((r) => setTimeout(r, 20));
      }
      // The dead postmaster may linger as a zombie until init reaps it, and a postmaster whose pid
      // answers kill(0) blocks the next start: its lock files go now that nothing runs.
      if (pids.length > 0) for (const f of [join(dataDir, 'postmaster.pid'), join(base, `.s.PGSQL.${port}.lock`), join(base, `.s.PGSQL.${port}`)]) rmSync(f, { force: true });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (postmasterPid(dataDir) !== undefined) await cluster.down({ mode: 'immediate' }).catch(() => killPostmaster(dataDir));
      cluster.teardownSync();
    },
  };
  live.add(cluster);

  try {
    const init = await runPg([join(bin, 'initdb'), '-D', dataDir, '--auth=trust', '-U', SUPERUSER, '--locale=C', '-E', 'UTF8', '--no-sync', '--no-instructions'], { ids, cwd: base });
    if (init.code !== 0) throw new Error(`initdb failed (${init.code}): ${init.out}`);
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      [
        '',
        '# plexd test cluster (bench/lib/pg-cluster.mjs)',
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${base}'`,
        // No fsync (the data is thrown away), but commits still reach the WAL before they are
        // acknowledged: kill() must not lose what a client was told is committed.
        'fsync = off',
        'full_page_writes = off',
        'max_connections = 200',
        'shared_buffers = 32MB',
        'logging_collector = off',
        '',
      ].join('\n'),
    );
    watchdog = startWatchdog(base, dataDir);
    for (let attempt = 0; ; attempt++) {
      try {
        await cluster.up();
        break;
      } catch (err) {
        // Someone took the port between freePort() and the bind: another one, unless it was given.
        if (attempt >= 2 || opts.port !== undefined || !/could not bind|Address already in use/i.test(logTail())) throw err;
        port = await freePort();
      }
    }
  } catch (err) {
    opts.log?.(logTail());
    cluster.teardownSync();
    throw err;
  }
  return cluster;
}
