// The command line as a new user meets it (issue 12, part 4): --help and --version everywhere, the
// natmatrix command, "did you mean", --list --json, options npm swallows, and relative paths that are
// the user's. None of these needs root.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli, ROOT } from './helpers.ts';

const BIN = join(ROOT, 'harness/natmatrix.mjs');
const natmatrix = (args: string[], env: Record<string, string> = {}, cwd = ROOT) =>
  execa(process.execPath, [BIN, ...args], { reject: false, cwd, env: { NO_COLOR: '1', ...env }, all: true });

const SCENARIO = { name: 'mine', description: 'a user scenario', a: ['full-cone'], b: ['symmetric'], tries: 1, expect: { 'full-cone': { symmetric: 'direct' } } };

test('every command answers --help with exit 0, and --version', async (t) => {
  for (const command of ['scenario', 'classify', 'clean', 'shell', 'bench']) {
    const r = await natmatrix([command, '--help']);
    t.is(r.exitCode, 0, `${command}: ${r.all}`);
    t.regex(r.stdout, new RegExp(`^usage: natmatrix ${command}`), command);
  }
  const top = await natmatrix(['--help']);
  t.is(top.exitCode, 0);
  t.regex(top.stdout, /^usage: natmatrix <command>/);
  for (const args of [['--version'], ['scenario', '--version'], ['clean', '--version']]) {
    const r = await natmatrix(args);
    t.is(r.exitCode, 0);
    t.regex(r.stdout, /^natmatrix \d+\.\d+\.\d+$/);
  }
  const bad = await natmatrix(['bogus']);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /^natmatrix: unknown command "bogus" \(commands: scenario, classify/);
});

test('a misspelled scenario or NAT type: one line with what it was probably meant to be, exit 2', async (t) => {
  const r = await cli(['symetric-vs-cone']);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^natmatrix: unknown scenario "symetric-vs-cone" \(did you mean "symmetric-vs-cone"\?\)/);
  const dir = mkdtempSync(join(tmpdir(), 'natmatrix-test-nat-'));
  writeFileSync(join(dir, 's.json'), JSON.stringify({ ...SCENARIO, b: ['symetric'] }));
  const n = await cli([join(dir, 's.json'), '--dry-run']);
  t.is(n.exitCode, 2);
  t.regex(n.stderr, /unknown NAT type "symetric" \(did you mean "symmetric"\?\)/);
  t.is(n.stderr.trim().split('\n').length, 1);
});

test('--list --json lists every scenario as data', async (t) => {
  const r = await cli(['--list', '--json']);
  t.is(r.exitCode, 0, r.all);
  const list = JSON.parse(r.stdout) as Array<{ name: string; a: string[]; b: string[]; tries: number; agents: string[] }>;
  const s = list.find((x) => x.name === 'symmetric-vs-cone');
  t.deepEqual(s?.a, ['symmetric']);
  t.true(s!.tries >= 1);
  t.true(list.length >= 10);
});

test('an option npm took for itself is refused with the fix, not silently dropped', async (t) => {
  // what `npm run scenario x --dry-run` leaves: no --dry-run in argv, npm_config_dry_run in the env
  const r = await cli(['symmetric-vs-cone'], { npm_lifecycle_event: 'scenario', npm_config_dry_run: 'true' });
  t.is(r.exitCode, 2, r.all);
  t.regex(r.stderr, /^natmatrix: npm took --dry-run for itself \(options before `--` are npm's\): write `npm run scenario -- … --dry-run`/);
});

test('relative paths and scenario names are the user\'s directory\'s, not natmatrix\'s', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'natmatrix-test-project-'));
  mkdirSync(join(project, 'scenarios'));
  writeFileSync(join(project, 'scenarios', 'mine.json'), JSON.stringify(SCENARIO));
  writeFileSync(join(project, 'other.json'), JSON.stringify({ ...SCENARIO, name: 'other' }));
  const env = { INIT_CWD: project };
  // a name: ./scenarios/ of the user's directory first
  const byName = await cli(['mine', '--dry-run'], env);
  t.is(byName.exitCode, 0, byName.all);
  t.is((JSON.parse(byName.stdout) as { topology: { scenario: string } }).topology.scenario, 'mine');
  const listed = await cli(['--list'], env);
  t.regex(listed.stdout, /^mine\s/m, 'the user\'s scenarios are listed');
  // a relative path
  const byPath = await cli(['other.json', '--dry-run'], env);
  t.is(byPath.exitCode, 0, byPath.all);
  // a relative --out: an old run's folder there is refused, by its path in the user's directory
  mkdirSync(join(project, 'old'));
  writeFileSync(join(project, 'old', 'report.json'), '{}');
  const out = await cli(['mine', '--out', 'old'], env);
  t.is(out.exitCode, 2, out.all);
  t.true(out.stderr.includes(`--out ${join(project, 'old')} is not empty`), out.stderr);
  // the natmatrix command run from the project itself
  const own = await natmatrix(['scenario', 'mine', '--dry-run'], {}, project);
  t.is(own.exitCode, 0, own.all);
});

// issue 13, part 5: the process used to exit before a pipe had taken all of stdout (cut at 65,536 bytes)
test('a large --dry-run arrives whole through a pipe', async (t) => {
  const r = await execa(process.execPath, [BIN, 'scenario', 'full-matrix', '--tries', '100', '--dry-run'], { reject: false, cwd: ROOT, env: { NO_COLOR: '1' }, stdout: 'pipe', encoding: 'utf8', stripFinalNewline: false });
  t.is(r.exitCode, 0, r.stderr);
  t.true(r.stdout.length > 4 * 65_536, `${r.stdout.length} bytes`);
  t.true(r.stdout.endsWith('}\n'), `ends with ${JSON.stringify(r.stdout.slice(-20))}`);
  const plan = JSON.parse(r.stdout) as { attempts: unknown[] };
  t.is(plan.attempts.length, 25 * 100);
});

test('--verbose says how many lanes the run gets and why', async (t) => {
  const r = await natmatrix(['scenario', 'full-matrix', '--dry-run', '--verbose']);
  t.is(r.exitCode, 0, r.stderr);
  // full-matrix's agent (the default, udp-punch) serves its tries: lanes by the run's lane time
  t.regex(r.stderr, /^natmatrix: run [a-z0-9]+: 75 tries on \d+ lanes \(\d+ for agents that serve their tries \(√ of ~\d+ s of tries: 9 of 75 expected to take up to their 600 ms window; at least 1, at most 4 per core × \d+ cores\), memory allows \d+ /m);
  const jobs = (JSON.parse(r.stdout) as { topology: { lanes: unknown[] } }).topology.lanes.length;
  t.regex(r.stderr, new RegExp(`75 tries on ${jobs} lanes`), 'the number said is the number planned');
  // an agent started per try (a bare executable): busy lanes per core, plus idle ones
  const perTry = await natmatrix(['scenario', 'full-matrix', '--dry-run', '--verbose', '--agent', 'agents/udp-punch/peer.ts']);
  t.is(perTry.exitCode, 0, perTry.stderr);
  t.regex(perTry.stderr, /^natmatrix: run [a-z0-9]+: 75 tries on \d+ lanes \(\d+ busy \(2 per core × \d+ cores\), \+ \d+ for tries expected to idle \(9 of 75; at most as many as busy\), memory allows \d+ /m);
});

// issue 13, part 2: a checkout's natmatrix command runs the harness compiled, built on first use and
// cached by the content of its sources: an edit is seen at the next start, never a stale build
test('the command builds the harness once, reuses it, and rebuilds after an edit (never runs a stale build)', async (t) => {
  const { cpSync, readdirSync, readFileSync, symlinkSync, existsSync } = await import('node:fs');
  const copy = mkdtempSync(join(tmpdir(), 'natmatrix-test-prebuilt-'));
  for (const part of ['harness', 'scenarios', 'agents/sdk', 'nft', 'package.json']) cpSync(join(ROOT, part), join(copy, part), { recursive: true });
  // its own node_modules (the packages linked), so its build cache is its own
  mkdirSync(join(copy, 'node_modules'));
  for (const p of readdirSync(join(ROOT, 'node_modules'))) if (p !== '.cache' && p !== '.bin') symlinkSync(join(ROOT, 'node_modules', p), join(copy, 'node_modules', p));
  const run = (args: string[]) => execa(process.execPath, [join(copy, 'harness/natmatrix.mjs'), ...args], { reject: false, cwd: copy, env: { NO_COLOR: '1' }, all: true });
  const index = join(copy, 'node_modules/.cache/natmatrix/cli/index.json');

  const first = await run(['scenario', '--list']);
  t.is(first.exitCode, 0, first.all);
  t.regex(first.stdout, /^symmetric-vs-cone\s/m);
  t.true(existsSync(index), 'built on first use');
  const built = JSON.parse(readFileSync(index, 'utf8')) as { hash: string; inputs: string[] };
  t.true(built.inputs.includes('harness/cli.ts') && built.inputs.includes('scenarios/full-matrix.ts'), built.inputs.join(' '));
  t.false(built.inputs.some((f) => f.includes('node_modules')), 'npm packages stay in node_modules');

  const again = await run(['scenario', '--list']);
  t.is(again.stdout, first.stdout);
  t.is((JSON.parse(readFileSync(index, 'utf8')) as { hash: string }).hash, built.hash, 'reused while nothing changed');

  const cli = join(copy, 'harness/cli.ts');
  writeFileSync(cli, readFileSync(cli, 'utf8').replace('Builds the scenario\'s NATs', 'EDITED: builds the scenario\'s NATs'));
  const edited = await run(['scenario', '--help']);
  t.regex(edited.stdout, /EDITED: builds/, 'the edit is seen at once');
  t.not((JSON.parse(readFileSync(index, 'utf8')) as { hash: string }).hash, built.hash);

  // a source that does not compile: the command does not fall back to an old build, it fails on the source
  // (a dry run needs report.ts; --help no longer loads it)
  const report = join(copy, 'harness/report.ts');
  writeFileSync(report, readFileSync(report, 'utf8') + '\nexport const broken = ;\n');
  const broken = await run(['scenario', 'full-matrix', '--dry-run']);
  t.not(broken.exitCode, 0);
  t.regex(broken.all, /report\.ts/);
});
