// The run folder (issue 11, defects 5b, 5c and 6): `--out` must name a folder, never an old run's (its
// stale evidence would mix with the new run's), the folder is created private (0700), and under sudo it is
// handed to the invoking user at the end without following a link out of it.
import test from 'ava';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../harness/errors.ts';
import { checkOutOption, checkRunFolder, handOver, invokingUser, makeRunFolder } from '../../harness/run-folder.ts';

const isRoot = process.getuid?.() === 0;
let tmp = '';
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nmx-run-folder-test-'));
});
test.after.always(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});
const fresh = (label: string) => mkdtempSync(join(tmp, `${label}-`));
const mode = (path: string) => statSync(path).mode & 0o777;

test('--out "" (or blanks) is a usage error, not the current directory', (t) => {
  for (const v of ['', '  ']) {
    const err = t.throws(() => checkOutOption(v), { instanceOf: UsageError });
    t.regex(err?.message ?? '', /^--out needs a folder/);
    t.false(err?.message.includes('\n'));
  }
  t.notThrows(() => checkOutOption(undefined));
  t.notThrows(() => checkOutOption('runs/x'));
});

test('a new run folder is created with mode 0700, its parents as needed', (t) => {
  const dir = join(fresh('new'), 'a', 'b', 'run');
  t.notThrows(() => checkRunFolder(dir));
  t.deepEqual(makeRunFolder(dir), { created: true });
  t.true(statSync(dir).isDirectory());
  t.is(mode(dir), 0o700);
});

test('an existing empty folder is used as it is (its mode is the user\'s choice)', (t) => {
  const dir = fresh('empty');
  t.notThrows(() => checkRunFolder(dir));
  const before = mode(dir);
  t.deepEqual(makeRunFolder(dir), { created: false });
  t.is(mode(dir), before);
});

test('a folder that is not empty (an old run\'s) is refused, and left as it was', (t) => {
  const dir = fresh('old-run');
  writeFileSync(join(dir, 'report.json'), '{"old": true}');
  for (const f of [checkRunFolder, makeRunFolder]) {
    const err = t.throws(() => f(dir), { instanceOf: UsageError });
    const msg = err?.message ?? '';
    t.true(msg.startsWith(`--out ${dir} is not empty`), msg);
    t.regex(msg, /choose an empty or new folder/);
    t.false(msg.includes('\n'));
  }
  t.is(readFileSync(join(dir, 'report.json'), 'utf8'), '{"old": true}');
  t.is(mode(dir), 0o700);
});

test('a hidden file is enough to make a folder not empty', (t) => {
  const dir = fresh('hidden');
  writeFileSync(join(dir, '.keep'), '');
  t.throws(() => checkRunFolder(dir), { instanceOf: UsageError, message: /is not empty/ });
});

test('--out naming a file is refused', (t) => {
  const file = join(fresh('file'), 'a-file');
  writeFileSync(file, 'mine');
  const err = t.throws(() => checkRunFolder(file), { instanceOf: UsageError });
  t.regex(err?.message ?? '', /is not a folder.*choose an empty or new folder/);
  t.is(readFileSync(file, 'utf8'), 'mine');
});

test('the invoking user comes from SUDO_UID and SUDO_GID, both whole numbers, never root', (t) => {
  t.deepEqual(invokingUser({ SUDO_UID: '1000', SUDO_GID: '1001' }), { uid: 1000, gid: 1001 });
  t.is(invokingUser({}), null);
  t.is(invokingUser({ SUDO_UID: '1000' }), null);
  t.is(invokingUser({ SUDO_UID: '0', SUDO_GID: '0' }), null);
  t.is(invokingUser({ SUDO_UID: '1000x', SUDO_GID: '1000' }), null);
  t.is(invokingUser({ SUDO_UID: '', SUDO_GID: '' }), null);
});

/** dir with a file, a subfolder, a symlink to an outside file, a symlink to an outside folder, a hard link */
function tree(label: string) {
  const base = fresh(label);
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'not yours');
  const dir = join(base, 'run');
  mkdirSync(dir);
  writeFileSync(join(dir, 'report.json'), '{}');
  mkdirSync(join(dir, 'cells'));
  writeFileSync(join(dir, 'cells', 'a.stderr'), '');
  symlinkSync(join(outside, 'secret'), join(dir, 'link-to-file'));
  symlinkSync(outside, join(dir, 'cells', 'link-to-dir'));
  linkSync(join(outside, 'secret'), join(dir, 'hard-link'));
  return { dir, outside };
}

test('handOver changes the folder and everything in it, links themselves only, never through them', (t) => {
  const { dir, outside } = tree('walk');
  const seen: string[] = [];
  const r = handOver(dir, { uid: 4242, gid: 4343 }, { includeTop: true, lchown: (p, uid, gid) => {
    t.is(uid, 4242);
    t.is(gid, 4343);
    seen.push(p);
  } });
  t.deepEqual(seen.sort(), [dir, join(dir, 'cells'), join(dir, 'cells', 'a.stderr'), join(dir, 'cells', 'link-to-dir'), join(dir, 'link-to-file'), join(dir, 'report.json')].sort());
  t.false(seen.some((p) => p.startsWith(outside)));
  // a hard link is the outside file itself: left alone, and said so
  t.deepEqual(r.skipped, [join(dir, 'hard-link')]);
});

test('handOver leaves a folder the user gave (not created by the run) as it is, its contents handed over', (t) => {
  const { dir } = tree('given');
  const seen: string[] = [];
  handOver(dir, { uid: 4242, gid: 4343 }, { includeTop: false, lchown: (p) => seen.push(p) });
  t.false(seen.includes(dir));
  t.true(seen.includes(join(dir, 'report.json')));
});

test('as root: handOver really changes the owners, and nothing outside the folder', (t) => {
  if (!isRoot) return t.pass('needs root to give files away');
  const { dir, outside } = tree('real');
  handOver(dir, { uid: 65534, gid: 65534 }, { includeTop: true });
  for (const p of [dir, join(dir, 'report.json'), join(dir, 'cells'), join(dir, 'cells', 'a.stderr'), join(dir, 'link-to-file'), join(dir, 'cells', 'link-to-dir')]) {
    const st = lstatSync(p);
    t.is(st.uid, 65534, p);
    t.is(st.gid, 65534, p);
  }
  for (const p of [outside, join(outside, 'secret')]) {
    t.is(lstatSync(p).uid, 0, p);
    t.is(lstatSync(p).gid, 0, p);
  }
});
