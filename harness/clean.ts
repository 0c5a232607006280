// npm run clean [-- RUNID…]: remove natmatrix leftovers — every nmx-* namespace (or only those of the
// given runs) and the processes inside them, ended by PID. Touches nothing else; safe to run twice.
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { exitWhenFlushed, fromUser, helpOrVersion } from './args.ts';
import { EnvironmentError, preflight } from './host.ts';
import { deleteNamespaces, endPids, listNamespaces, NS_PREFIX, processesIn } from './netns.ts';
import { procPids } from './proc.ts';

export interface CleanResult {
  namespaces: string[];
  pids: number[];
}

/**
 * Processes of natmatrix runs (every agent, service and child of theirs inherits NMX_RUN) that live in
 * a network namespace other than ours: their lab namespace, or one already deleted, where listing the
 * namespaces cannot find them any more. Only `runIds`' when given.
 */
export function runProcesses(runIds: string[] = []): number[] {
  const mine = readlinkSync('/proc/self/ns/net');
  const wanted = runIds.length ? new Set(runIds.map((id) => `NMX_RUN=${id}`)) : null;
  const pids: number[] = [];
  for (const pid of procPids()) {
    if (pid === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === mine) continue;
      const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      if (env.some((v) => (wanted ? wanted.has(v) : /^NMX_RUN=[a-z0-9]{1,12}$/.test(v)))) pids.push(pid);
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return pids;
}

export async function clean(runIds: string[] = []): Promise<CleanResult> {
  const prefixes = runIds.length ? runIds.map((id) => `${NS_PREFIX}${id}-`) : [NS_PREFIX];
  const namespaces = (await listNamespaces()).filter((n) => prefixes.some((p) => n.startsWith(p)));
  const inside = [...processesIn(namespaces).values()].flat().map((p) => p.pid);
  const pids = [...new Set([...inside, ...runProcesses(runIds)])];
  await endPids(pids, 1000);
  await deleteNamespaces(namespaces);
  return { namespaces, pids };
}

const HELP = `usage: natmatrix clean [RUNID|RUN-FOLDER…]      (npm run clean -- [RUNID|RUN-FOLDER…])

Removes natmatrix's leftovers: every nmx-* network namespace (or only those of the given runs) and
the processes inside them, ended by PID. Touches nothing else; safe to run twice. Needs root (sudo).
A run id is the part after nmx- in a namespace name (e.g. k3x9qz), also in a run's topology.json; a
run folder stands for its run (a CI job cleans up only its own run: natmatrix clean runs/mine).

options:
  -h, --help   this text
  --version    print natmatrix's version`;

/** The run id of a run folder (its topology.json, written before anything is built), else the
 * argument itself when it has a run id's shape (a folder named like one, e.g. "out", is a folder). */
export function runIdOfArg(arg: string): string | null {
  try {
    const id = (JSON.parse(readFileSync(join(fromUser(arg), 'topology.json'), 'utf8')) as { runId?: unknown }).runId;
    if (typeof id === 'string' && /^[a-z0-9]{1,12}$/.test(id)) return id;
  } catch {
    /* not a run folder */
  }
  return /^[a-z0-9]{1,12}$/.test(arg) ? arg : null;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (helpOrVersion(args, HELP)) return 0;
  const ids: string[] = [];
  for (const arg of args) {
    const id = runIdOfArg(arg);
    if (id === null) {
      process.stderr.write(`natmatrix clean: "${arg}" is neither a run id (the part after ${NS_PREFIX} in a namespace name, e.g. k3x9qz) nor a run folder with a topology.json (--help says more)\n`);
      return 2;
    }
    ids.push(id);
  }
  try {
    preflight({ ip: 'iproute2' });
  } catch (e) {
    if (e instanceof EnvironmentError) {
      process.stderr.write(`natmatrix clean: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const r = await clean(ids);
  const what = ids.length ? `of run ${ids.join(', ')}` : `named ${NS_PREFIX}*`;
  console.log(
    r.namespaces.length === 0 && r.pids.length === 0
      ? `natmatrix clean: no namespaces ${what}; nothing to do`
      : `natmatrix clean: removed ${r.namespaces.length} namespaces ${what}, ended ${r.pids.length} process${r.pids.length === 1 ? '' : 'es'}`,
  );
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((code) => exitWhenFlushed(code));
}
