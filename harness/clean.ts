// npm run clean [-- RUNID…]: remove natmatrix leftovers — every nmx-* namespace (or only those of the
// given runs) and the processes inside them, ended by PID. Touches nothing else; safe to run twice.
import { EnvironmentError, preflight } from './host.ts';
import { deleteNamespaces, endPids, listNamespaces, namespacePids, NS_PREFIX } from './netns.ts';

export interface CleanResult {
  namespaces: string[];
  pids: number[];
}

export async function clean(runIds: string[] = []): Promise<CleanResult> {
  const prefixes = runIds.length ? runIds.map((id) => `${NS_PREFIX}${id}-`) : [NS_PREFIX];
  const namespaces = (await listNamespaces()).filter((n) => prefixes.some((p) => n.startsWith(p)));
  const pids = [...new Set((await Promise.all(namespaces.map(namespacePids))).flat())].filter((pid) => pid !== process.pid);
  await endPids(pids, 1000);
  await deleteNamespaces(namespaces);
  return { namespaces, pids };
}

async function main(): Promise<number> {
  const ids = process.argv.slice(2);
  for (const id of ids) {
    if (!/^[a-z0-9]{1,12}$/.test(id)) {
      process.stderr.write(`natmatrix clean: "${id}" is not a run id (the part after ${NS_PREFIX} in a namespace name, e.g. k3x9qz)\n`);
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
    r.namespaces.length === 0
      ? `natmatrix clean: no namespaces ${what}; nothing to do`
      : `natmatrix clean: removed ${r.namespaces.length} namespaces ${what}, ended ${r.pids.length} processes`,
  );
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((code) => process.exit(code));
}
