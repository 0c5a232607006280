#!/usr/bin/env node
// The natmatrix command: `natmatrix <command> [args]`, the same programs as the npm scripts. Plain
// JavaScript so that it runs with no loader of the user's. It hands over to the command's module
// compiled (prebuilt.mjs), else to its TypeScript source with tsx (natmatrix's own dependency, resolved
// from here, not from the user's project) registered for it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMPILED_SCENARIOS, prebuilt } from './prebuilt.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const COMMANDS = {
  scenario: ['cli.ts', 'build the scenario\'s NATs, run its agents through every pairing, print the matrix'],
  classify: ['classify-cli.ts', 'measure what every NAT type\'s router really does (RFC 5780-style)'],
  clean: ['clean.ts', 'remove leftover nmx-* namespaces and their processes'],
  shell: ['shell.ts', 'a shell (or one command) inside a node of a lab kept with --keep'],
  bench: ['bench.ts', 'time whole scenario runs against the targets'],
  compare: ['compare-cli.ts', 'compare two runs cell by cell: unchanged, improved, regressed (Fisher\'s exact test)'],
  merge: ['merge-cli.ts', 'pool the run folders of a run\'s shards (--shard i/n) into one run and report'],
  setup: ['setup.sh', 'install the OS packages natmatrix needs (apt-get); in a checkout, then npm ci'],
};
const HELP = `usage: natmatrix <command> [args]      (every command takes --help)

commands:
${Object.entries(COMMANDS).map(([name, [, what]]) => `  ${name.padEnd(10)} ${what}`).join('\n')}

  natmatrix scenario symmetric-vs-cone          a shipped scenario
  natmatrix scenario scenarios/mine.ts --json   your own (paths are relative to where you are)

Needs root (sudo) for everything but --help, --version, scenario --list, scenario --dry-run, compare and merge.`;

const [command, ...rest] = process.argv.slice(2);
if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(HELP + '\n');
  process.exit(command === undefined ? 2 : 0);
}
if (command === '--version') {
  process.stdout.write(`natmatrix ${JSON.parse(readFileSync(here('../package.json'), 'utf8')).version}\n`);
  process.exit(0);
}
const entry = COMMANDS[command];
if (!entry) {
  process.stderr.write(`natmatrix: unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')}; natmatrix --help)\n`);
  process.exit(2);
}
const source = here(entry[0]);
if (source.endsWith('.sh')) {
  const r = spawnSync('bash', [source, ...rest], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
// the harness compiled (prebuilt.mjs: dist/ in the installed package, a cached build in a checkout),
// so no TypeScript loader starts with the command; the sources through tsx if that cannot be had
const built = await prebuilt(here('..'), entry[0]);
let file = source;
if (built) {
  file = built.file;
  globalThis[COMPILED_SCENARIOS] = built.scenarios;
} else {
  const { register } = await import('tsx/esm/api');
  register();
}
process.argv = [process.argv[0], file, ...rest];
// the command as the user typed it, for hints ("run it with sudo: sudo npx natmatrix …", args.ts);
// under npm in natmatrix's own folder the hint is the npm script the user ran
if (!(process.env.npm_lifecycle_event && process.cwd() === here('..').replace(/\/$/, ''))) globalThis[Symbol.for('natmatrix.typed')] = ['natmatrix', command, ...rest];
await import(file);
