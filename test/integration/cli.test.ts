// Bad input gets one clear line, exit code 2, and leaves nothing behind.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { cli, FIXTURES, isRoot, namespaces, tempDir } from './helpers.ts';

async function nothingLeft(t: import('ava').ExecutionContext, before: string[]) {
  if (isRoot) t.deepEqual(await namespaces(), before);
}

test.serial('unknown scenario: one line listing the known ones, exit 2', async (t) => {
  const before = isRoot ? await namespaces() : [];
  const r = await cli(['no-such-scenario']);
  t.is(r.exitCode, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /unknown scenario "no-such-scenario" \(known: binding-keepalive, binding-timeout, cgnat, cone-vs-cone, dmz, fallback, full-matrix, hairpin, matconnect, real-stacks, rfc4787-grid, rogue-rendezvous, symmetric-vs-cone, tcp-matrix;/);
  await nothingLeft(t, before);
});

test.serial('malformed scenario: names the field and the problem, exit 2', async (t) => {
  const r = await cli([join(FIXTURES, 'malformed.ts')]);
  t.is(r.exitCode, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /a\.0: unknown NAT type "symetric" \(did you mean "symmetric"\?\) \(known: dmz, full-cone/);
});

test.serial('bad options: exit 2 with the reason', async (t) => {
  for (const [args, msg] of [
    [['symmetric-vs-cone', '--tries', '0'], /--tries must be a whole number from 1/],
    [['symmetric-vs-cone', '--timeout', 'soon'], /--timeout must be a whole number/],
    [['symmetric-vs-cone', '--timeout', '1'], /--timeout must be a whole number from 50 to 600000, not "1"/],
    [['symmetric-vs-cone', '--tries', '0x10'], /--tries must be a whole number from 1 to 1000, not "0x10"/],
    [['symmetric-vs-cone', '--tries', ' 2 '], /--tries must be a whole number/],
    [['symmetric-vs-cone', '--jobs', '1e3'], /--jobs must be a whole number/],
    [['symmetric-vs-cone', '--internet-hops=-1'], /--internet-hops must be a whole number from 0 to 64/],
    [['symmetric-vs-cone', '--internet-hops', '-1'], /^natmatrix: Option '--internet-hops' argument is ambiguous\. Did you forget/],
    [['symmetric-vs-cone', '--rendezvous-scope', 'galaxy'], /--rendezvous-scope must be one of run, lane, try, not "galaxy"/],
    [['symmetric-vs-cone', '--bogus'], /Unknown option '--bogus'/],
    [[], /which scenario\? give a name or a scenario file \(your own go in \.\/scenarios\/; known: /],
  ] as const) {
    const r = await cli([...args]);
    t.is(r.exitCode, 2, args.join(' '));
    t.regex(r.stderr, msg);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test.serial('--help and --list exit 0', async (t) => {
  const h = await cli(['--help']);
  t.is(h.exitCode, 0);
  t.regex(h.stdout, /usage: natmatrix scenario .*\(npm run scenario -- /);
  const l = await cli(['--list']);
  t.is(l.exitCode, 0);
  t.regex(l.stdout, /^full-matrix\s+5×5, 3 tries/m);
  t.regex(l.stdout, /^symmetric-vs-cone\s+1×3/m);
});

test.serial('--dry-run prints the plan without root', async (t) => {
  const r = await cli(['symmetric-vs-cone', '--dry-run', '--jobs', '2']);
  t.is(r.exitCode, 0);
  const plan = JSON.parse(r.stdout) as { topology: { lanes: unknown[]; namespaces: string[] }; attempts: unknown[] };
  t.is(plan.topology.lanes.length, 2);
  t.is(plan.attempts.length, 9);
  t.true(plan.topology.namespaces.every((n) => /^nmx-[a-z0-9]+-/.test(n)));
});

test.serial('an unwritable run folder: exit 2, nothing left behind', async (t) => {
  if (!isRoot) return t.pass('needs root to get past the root check');
  const before = await namespaces();
  const file = join(tempDir('unwritable'), 'a-file');
  writeFileSync(file, '');
  const r = await cli(['symmetric-vs-cone', '--out', join(file, 'run')]);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /cannot write the run folder .*a-file\/run: ENOTDIR \(choose another with --out\)/);
  await nothingLeft(t, before);
});

test.serial('not root: one line saying to use sudo, exit 2', async (t) => {
  // as root, drop to nobody for this one run; as a user, we are already not root
  const out = tempDir('notroot');
  const r = isRoot
    ? await (await import('execa')).execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', 'harness/cli.ts', 'symmetric-vs-cone', '--out', out], {
        reject: false,
        cwd: join(import.meta.dirname, '../..'),
        env: { HOME: '/tmp', TSX_DISABLE_CACHE: '1' },
      })
    : await cli(['symmetric-vs-cone', '--out', out]);
  t.is(r.exitCode, 2, r.stderr);
  t.regex(r.stderr, /natmatrix needs root .*run it with sudo/);
});

// issue 11, defect 5: every one of these is one line and exit 2, and none of them needs root

const oneLine = (t: import('ava').ExecutionContext, r: { stderr: string; exitCode?: number }) => {
  t.is(r.exitCode, 2, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.true(r.stderr.startsWith('natmatrix: '), r.stderr);
};

test.serial('a scenario with a syntax error: one line naming file:line:column, exit 2', async (t) => {
  const file = join(tempDir('syntax'), 'syntax.ts');
  writeFileSync(file, `export default {\n  name: 'x',\n  description: 'y',\n  a: ['symmetric'\n  b: ['full-cone'],\n};\n`);
  const r = await cli([file, '--dry-run']);
  oneLine(t, r);
  t.true(r.stderr.includes(`${file}:5:2`), r.stderr);
  t.regex(r.stderr, /Expected "\]" but found "b"/);
});

test.serial('--out "" is a usage error, not the current directory', async (t) => {
  for (const args of [['--out', ''], ['--out=']]) {
    const r = await cli(['symmetric-vs-cone', '--dry-run', ...args]);
    oneLine(t, r);
    t.regex(r.stderr, /--out needs a folder/);
  }
});

test.serial('--out naming an old run folder is refused: one line, exit 2, the folder untouched', async (t) => {
  const before = isRoot ? await namespaces() : [];
  const old = tempDir('old-run');
  writeFileSync(join(old, 'report.json'), '{"stale": true}');
  const r = await cli(['symmetric-vs-cone', '--tries', '1', '--out', old]);
  oneLine(t, r);
  t.regex(r.stderr, new RegExp(`--out ${old} is not empty.*choose an empty or new folder`));
  t.deepEqual(readdirSync(old), ['report.json']);
  t.is(readFileSync(join(old, 'report.json'), 'utf8'), '{"stale": true}');
  await nothingLeft(t, before);
});

test.serial('a scenario whose top-level await never settles: exit 2 saying it never finished loading', async (t) => {
  const r = await cli([join(FIXTURES, 'never-loads.ts'), '--dry-run']);
  oneLine(t, r);
  t.regex(r.stderr, /^natmatrix: scenario \S+never-loads\.ts never finished loading/);
  t.is(r.stdout, '');
});

test.serial('an expect row named __proto__: a usage error naming it, exit 2', async (t) => {
  const file = join(tempDir('proto'), 'proto.json');
  writeFileSync(file, '{"name":"proto","description":"d","a":["symmetric"],"b":["full-cone"],"expect":{"symmetric":{"full-cone":"direct"},"__proto__":{"full-cone":"failed"}}}');
  const r = await cli([file, '--dry-run']);
  oneLine(t, r);
  t.regex(r.stderr, /expect\.__proto__: /);
});
