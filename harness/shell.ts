// npm run shell -- <run> <node> [command…]: a shell (or one command) inside a node of a kept lab,
// e.g. `sudo npm run shell -- k3x9qz 0ha` or `sudo npm run shell -- k3x9qz 0ra nft list ruleset`.
// <node> is the part after nmx-<run>- in the namespace name (see the run's topology.json).
import { spawnSync } from 'node:child_process';
import { exitWhenFlushed, helpOrVersion } from './args.ts';
import { EnvironmentError, preflight, systemTool } from './host.ts';
import { listNamespaces, NS_PREFIX } from './netns.ts';

const HELP = `usage: natmatrix shell <run id> <node> [command…]      (npm run shell -- <run id> <node> [command…])

A shell (or one command) inside a node of a lab kept with --keep, e.g. \`natmatrix shell k3x9qz 0ha\` or
\`natmatrix shell k3x9qz 0ra nft list ruleset\`. <node> is the part after nmx-<run>- in the namespace
name (see the run's topology.json): inet, rdv, <lane>r{a,b}, <lane>h{a,b}. Needs root (sudo).

options (before the run id):
  -h, --help   this text
  --version    print natmatrix's version`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  // only the words before the node's command are natmatrix's: \`shell k3 0ha ls --help\` is ls's help
  if (helpOrVersion(args.slice(0, 2).filter((a) => a.startsWith('-')), HELP)) return 0;
  const [run, node, ...command] = args;
  if (!run || !node) {
    process.stderr.write('usage: npm run shell -- <run id> <node> [command…]   (nodes: see topology.json, e.g. inet, rdv, 0ra, 0ha)\n');
    return 2;
  }
  try {
    preflight({ ip: 'iproute2', nsenter: 'util-linux' });
  } catch (e) {
    if (e instanceof EnvironmentError) {
      process.stderr.write(`natmatrix shell: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const ns = `${NS_PREFIX}${run}-${node}`;
  const known = (await listNamespaces(`${NS_PREFIX}${run}-`)).map((n) => n.slice(`${NS_PREFIX}${run}-`.length));
  if (!known.includes(node)) {
    process.stderr.write(
      known.length
        ? `natmatrix shell: run ${run} has no node "${node}" (it has: ${known.sort().join(', ')})\n`
        : `natmatrix shell: no namespaces of run ${run} (was it run with --keep? npm run scenario … -- --keep)\n`,
    );
    return 2;
  }
  const argv = command.length ? command : [process.env.SHELL || '/bin/bash'];
  if (!command.length) process.stderr.write(`natmatrix shell: entering ${ns} (exit to leave)\n`);
  // npm run puts node_modules/.bin first on PATH, where `nft` is a file tracer, not nftables
  const PATH = (process.env.PATH ?? '').split(':').filter((d) => !d.includes('node_modules')).join(':');
  const r = spawnSync(systemTool('nsenter'), [`--net=/run/netns/${ns}`, '--', ...argv], { stdio: 'inherit', env: { ...process.env, PATH } });
  if (r.error) {
    process.stderr.write(`natmatrix shell: cannot run ${argv[0]}: ${r.error.message}\n`);
    return 2;
  }
  return r.status ?? 1;
}

main().then((code) => exitWhenFlushed(code));
