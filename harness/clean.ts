// npm run clean [-- RUNID…]: remove natmatrix leftovers — every nmx-* namespace (or only those of the
// given runs) and the processes inside them, ended by PID. Touches nothing else; safe to run twice.
import { readFileSync, readlinkSync } from 'node:fs';
import { exitWhenFlushed, helpOrVersion } from './args.ts';
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

const HELP = `usage: natmatrix clean [RUNID…]      (npm run clean -- [RUNID…])

Removes natmatrix's leftovers: every nmx-* network namespace (or only those of the given runs) and
the processes inside them, ended by PID. Touches nothing else; safe to run twice. Needs root (sudo).
A run id is the part after nmx- in a namespace name (e.g. k3x9qz), also in a run's topology.json.

options:
  -h, --help   this text
  --version    print natmatrix's version`;

async function main(): Promise<number> {
  const ids = process.argv.slice(2);
  if (helpOrVersion(ids, HELP)) return 0;
  for (const id of ids) {
    if (!/^[a-z0-9]{1,12}$/.test(id)) {
      process.stderr.write(`natmatrix clean: "${id}" is not a run id (the part after ${NS_PREFIX} in a namespace name, e.g. k3x9qz; --help says more)\n`);
      return 2;
    }
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
