// `plexd-userspace control-plane actions ...`: run remote actions on nodes, follow and cancel them,
// approve hooks, show a node's capabilities (issue 18, docs/operations.md "Remote actions" and
// "Hooks"). Everything is a transaction on the database file; a running `serve` delivers it (the
// action_request event, then the node's state pull). Logic is in src/control-plane/actions.ts.

import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { approveHook, cancelExecution, capabilitiesOf, createExecution, getExecution, listExecutions, listHookApprovals, parseParamList, type ExecutionView } from '../control-plane/actions.js';
import { dbArgs, DB_OPTIONS, print, withStore } from './control-plane-common.js';
import { EXIT } from './constants.js';
import { formatTable } from './table.js';
import { UsageError } from './usage-error.js';

/** Usage lines of the actions commands (part of `control-plane --help`). */
export const ACTIONS_USAGE = `  actions run|list|show|cancel|approve-hook|hooks|capabilities ...  remote actions (docs/operations.md)
`;

/** "30s", "10m", "2h" in ms, or undefined. */
function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,6})(s|m|h)$/.exec(text);
  return m === null ? undefined : Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
}

/** Statuses after which an execution never changes. */
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

interface Values {
  readonly [flag: string]: string | boolean | undefined;
  readonly param?: string[] & string;
}

function parse(args: readonly string[], extra: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: [...args], options: { ...DB_OPTIONS, json: { type: 'boolean' }, ...extra }, allowPositionals: true, strict: true });
    return { values: r.values as unknown as Values, positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
}

/** `--param K=V` list -> object; a repeated key is a usage error. */
export function paramsOf(list: readonly string[]): Record<string, string> {
  const out = parseParamList(list);
  if (typeof out === 'string') throw new UsageError(`--param: ${out}`);
  return out;
}

function line(e: ExecutionView): string[] {
  return [e.execution_id, e.node_id, `${e.type === 'hook' ? 'hook:' : ''}${e.action}`, e.cancel_requested && !TERMINAL.has(e.status) ? `${e.status} (cancel requested)` : e.status, e.exit_code === null ? '-' : String(e.exit_code), e.requested_at, e.error ?? ''];
}

function showOne(e: ExecutionView, json: boolean): void {
  if (json) {
    print(JSON.stringify(e));
    return;
  }
  print(formatTable(['EXECUTION', 'NODE', 'ACTION', 'STATUS', 'EXIT', 'REQUESTED', 'ERROR'], [line(e)]));
  if (e.output !== undefined && e.output !== '') print(`--- output (${e.output_bytes} bytes${e.output_object_key === null ? '' : `, uploaded as ${e.output_object_key}`})\n${e.output}`);
}

/** The full usage, shown by `control-plane actions` without a verb or with a wrong one. */
const USAGE = `control-plane actions:
  actions run NODE_ID ACTION --db FILE [--hook] [--param K=V ...] [--timeout 10m] [--wait] [--json]
        queue ACTION (a built-in such as system.info, or with --hook an approved hook) on the node;
        --wait follows it to its end and prints the output (exit 1 unless it succeeded)
  actions list [NODE_ID] --db FILE [--json]
  actions show EXEC_ID --db FILE [--json]     status, error and output of one execution
  actions cancel EXEC_ID --db FILE            cancel (a started one is aborted by the node)
  actions approve-hook NODE_ID|--all NAME SHA256 --db FILE [--project ID]
        let hook NAME run when its file's SHA-256 is SHA256 (plexd-userspace hooks list shows it)
  actions hooks --db FILE [--json]            approved hook digests
  actions capabilities NODE_ID --db FILE [--json]   the node's built-ins and hooks (its manifest)
`;

/** Runs `control-plane actions ARGS`; resolves to the exit code. Throws UsageError on bad usage
 *  and Error (exit 1 in the caller) on refusals. */
export async function actions(args: readonly string[]): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'run': {
      const { values, positionals } = parse(rest, { param: { type: 'string', multiple: true }, hook: { type: 'boolean' }, wait: { type: 'boolean' }, timeout: { type: 'string' } });
      const [nodeId, action, ...more] = positionals;
      if (nodeId === undefined || action === undefined || more.length > 0) throw new UsageError('expected actions run NODE_ID ACTION');
      const timeoutMs = typeof values.timeout === 'string' ? parseDuration(values.timeout) : undefined;
      if (values.timeout !== undefined && timeoutMs === undefined) throw new UsageError(`--timeout: expected a duration such as 30s or 10m, got ${JSON.stringify(values.timeout)}`);
      const db = dbArgs(values);
      const id = withStore(db, (s) => createExecution(s, {
        nodeId, action, type: values.hook === true ? 'hook' : 'builtin', parameters: paramsOf((values.param as readonly string[] | undefined) ?? []),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      }));
      if (values.wait !== true) {
        print(values.json === true ? JSON.stringify({ execution_id: id, status: 'pending' }) : id);
        return EXIT.ok;
      }
      for (;;) {
        const e = withStore(db, (s) => getExecution(s.db, id));
        if (e === undefined) throw new Error(`execution ${id} vanished (node removed?)`);
        if (TERMINAL.has(e.status)) {
          showOne(e, values.json === true);
          return e.status === 'succeeded' ? EXIT.ok : EXIT.setupFailed;
        }
        await sleep(200);
      }
    }
    case 'list': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length > 1) throw new UsageError('expected actions list [NODE_ID]');
      const list = withStore(dbArgs(values), (s) => listExecutions(s.db, positionals[0]));
      if (values.json === true) print(JSON.stringify(list));
      else print(formatTable(['EXECUTION', 'NODE', 'ACTION', 'STATUS', 'EXIT', 'REQUESTED', 'ERROR'], list.map(line)));
      return EXIT.ok;
    }
    case 'show': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 1) throw new UsageError('expected actions show EXEC_ID');
      const e = withStore(dbArgs(values), (s) => getExecution(s.db, positionals[0]!));
      if (e === undefined) throw new Error(`no execution ${positionals[0]}`);
      showOne(e, values.json === true);
      return EXIT.ok;
    }
    case 'cancel': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 1) throw new UsageError('expected actions cancel EXEC_ID');
      const r = withStore(dbArgs(values), (s) => cancelExecution(s, positionals[0]!));
      print(r === 'cancel_requested' ? `${positionals[0]}: cancel requested; the node aborts it and reports cancelled` : `${positionals[0]}: ${r}`);
      return EXIT.ok;
    }
    case 'approve-hook': {
      const { values, positionals } = parse(rest, { all: { type: 'boolean' }, project: { type: 'string' } });
      const want = values.all === true ? 2 : 3;
      if (positionals.length !== want) throw new UsageError('expected actions approve-hook NODE_ID|--all NAME SHA256');
      const [nodeId, name, sha] = values.all === true ? [undefined, ...positionals] : positionals;
      const r = withStore(dbArgs(values), (s) => approveHook(s, { ...(nodeId === undefined ? {} : { nodeId }), ...(typeof values.project === 'string' ? { projectId: values.project } : {}) }, name!, sha!));
      print(`hook ${r.name} approved with sha256:${r.sha256} for ${r.node_id === '' ? `every node of project ${r.project_id}` : `node ${r.node_id}`}`);
      return EXIT.ok;
    }
    case 'hooks': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}`);
      const list = withStore(dbArgs(values), (s) => listHookApprovals(s.db));
      if (values.json === true) print(JSON.stringify(list));
      else print(formatTable(['PROJECT', 'NODE', 'HOOK', 'SHA256'], list.map((a) => [a.project_id, a.node_id === '' ? '(all)' : a.node_id, a.name, a.sha256])));
      return EXIT.ok;
    }
    case 'capabilities': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 1) throw new UsageError('expected actions capabilities NODE_ID');
      const caps = withStore(dbArgs(values), (s) => {
        if (s.node(positionals[0]!) === undefined) throw new Error(`no node ${positionals[0]}`);
        return capabilitiesOf(s.db, positionals[0]!);
      });
      if (values.json === true) print(JSON.stringify(caps ?? null));
      else if (caps === undefined) print('the node has not sent its capabilities yet');
      else {
        const rows = [
          ...(caps.builtin_actions ?? []).map((a) => ['builtin', a.name, a.parameters.map((p) => p.name).join(','), a.description]),
          ...(caps.hooks ?? []).map((h) => ['hook', h.name, h.checksum, h.description]),
        ];
        print(formatTable(['TYPE', 'NAME', 'PARAMS/CHECKSUM', 'DESCRIPTION'], rows));
      }
      return EXIT.ok;
    }
    default:
      process.stderr.write(USAGE);
      return EXIT.usage;
  }
}
