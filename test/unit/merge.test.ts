// merge (merge.ts): the shards of a run pooled into one report, as if one machine had run every try;
// refused, with nothing written, for shards that do not make one run. Fixtures: a real run of
// symmetric-vs-cone with 4 tries, split into 3 shards (test/fixtures/shards/s1..s3), and the same
// scenario run whole.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { UsageError } from '../../harness/errors.ts';
import { linkTree, mergeRuns, shareOf } from '../../harness/merge.ts';
import { judgeCells } from '../../harness/run.ts';
import type { Attempt, Report } from '../../harness/types.ts';
import { tempDir } from '../integration/helpers.ts';

const FIXTURES = new URL('../fixtures/shards/', import.meta.url).pathname;
const read = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** Copies of the fixture shards in a fresh folder, to edit. */
function shards(): string[] {
  const dir = tempDir('merge');
  return ['s1', 's2', 's3'].map((s) => {
    cpSync(join(FIXTURES, s), join(dir, s), { recursive: true });
    return join(dir, s);
  });
}

const edit = (dir: string, file: string, change: (x: any) => void) => {
  const x = read<any>(join(dir, file));
  change(x);
  writeFileSync(join(dir, file), JSON.stringify(x));
};

test('shareOf: the tries dealt round n shards add up to the run\'s', (t) => {
  for (const planned of [1, 7, 12, 500]) {
    for (const count of [1, 2, 3, 7].filter((c) => c <= planned)) {
      const shares = Array.from({ length: count }, (_, k) => shareOf(k + 1, count, planned));
      t.is(shares.reduce((a, b) => a + b, 0), planned, `${planned} over ${count}`);
      t.true(Math.max(...shares) - Math.min(...shares) <= 1);
    }
  }
});

test('three shards merged: every cell pools its tries, judged as one run judges them', (t) => {
  const dirs = shards();
  // a shard run with --baseline compared only its share: the merged report must not carry that
  edit(dirs[0]!, 'report.json', (r) => (r.baseline = { summary: { regressed: 1 } }));
  const out = join(tempDir('merged'), 'run');
  const report = mergeRuns(dirs, { out });
  const all = dirs.flatMap((d) => read<Attempt[]>(join(d, 'attempts.json')));
  t.is(all.length, 12);
  // the pooled cells are what judging all 12 tries at once gives
  const whole = read<Report>(join(FIXTURES, 'whole/report.json'));
  const planned = whole.cells.map((c, cell) => ({ cell, agent: 0, a: c.a, b: c.b, expected: c.expected }));
  const expected = judgeCells({ attempts: planned as never, agents: 1 }, all, [whole.cells[0]!.agent]);
  t.deepEqual(report.cells, expected);
  t.deepEqual(report.cells.map((c) => [c.a, c.b, c.tries, c.successes]), [['symmetric', 'full-cone', 4, 4], ['symmetric', 'address-restricted', 4, 4], ['symmetric', 'port-restricted', 4, 0]]);
  // the Wilson interval is the pooled counts', not a shard's
  t.is(report.cells[0]!.successRate.low, 0.51);
  t.is(report.cells[0]!.timeToDirectMs.samples.length, 4);
  t.deepEqual(report.merged!.shards.map((s) => [s.index, s.tries]), [[1, 4], [2, 4], [3, 4]]);
  t.is(report.shard, undefined);
  t.is(report.baseline, undefined);
  t.is(report.summary.cells, 3);
  t.is(report.summary.matched, 3);
  // and the same outcomes as the scenario run whole
  const key = (r: Report) => r.cells.map((c) => [c.a, c.b, c.expected, c.outcome, c.tries, c.successes, c.paths, c.match]);
  t.deepEqual(key(report), key(whole));
  // written whole: the report files, the pooled tries, each shard's own files
  for (const f of ['report.json', 'report.md', 'report.junit.xml', 'report.html', 'attempts.json', 'shards/1/report.json', 'shards/3/attempts.json']) t.true(existsSync(join(out, f)), f);
  t.is(read<Attempt[]>(join(out, 'attempts.json')).length, 12);
  t.deepEqual(read<Report>(join(out, 'report.json')).cells, report.cells);
  t.regex(readFileSync(join(out, 'report.md'), 'utf8'), /merged from 3 shards/);
});

const refusals: Array<[string, (dirs: string[]) => string[], RegExp]> = [
  ['a missing shard', (d) => [d[0]!, d[2]!], /shard 2 of 3 missing/],
  ['a shard given twice', (d) => [d[0]!, d[1]!, d[1]!, d[2]!], /shard 2\/3 given twice/],
  ['a shard of another plan', (d) => (edit(d[1]!, 'report.json', (r) => (r.planId = '0123456789abcdef')), d), /not a shard of the same run .* plan "0123456789abcdef"/],
  ['a shard of another scenario', (d) => (edit(d[2]!, 'report.json', (r) => (r.scenario = 'full-matrix')), d), /scenario "full-matrix"/],
  ['a shard of another natmatrix', (d) => (edit(d[2]!, 'report.json', (r) => (r.version = '9.9.9')), d), /natmatrix "9.9.9"/],
  ['a corrupt report', (d) => (writeFileSync(join(d[1]!, 'report.json'), '{"tool":"natmatrix","ver'), d), /s2\/report.json is corrupt/],
  ['a report that is not natmatrix\'s', (d) => (writeFileSync(join(d[1]!, 'report.json'), '{"hello":1}'), d), /s2\/report.json is not a natmatrix shard report/],
  ['an empty attempts.json', (d) => (writeFileSync(join(d[0]!, 'attempts.json'), ''), d), /s1\/attempts.json is corrupt/],
  ['a missing attempts.json', (d) => (rmSync(join(d[0]!, 'attempts.json')), d), /s1\/attempts.json is missing/],
  ['a shard that lost tries', (d) => (edit(d[0]!, 'attempts.json', (a) => a.pop()), d), /holds 3 tries where shard 1\/3 of a 12-try run holds 4/],
  ['a whole run', (d) => [...d, join(FIXTURES, 'whole')], /whole run, not a shard/],
  ['nothing', () => [], /give the run folders/],
];
for (const [what, make, message] of refusals) {
  test(`refused, with nothing written: ${what}`, (t) => {
    const dirs = make(shards());
    const parent = tempDir('refused');
    const out = join(parent, 'run');
    t.throws(() => mergeRuns(dirs, { out }), { instanceOf: UsageError, message });
    t.deepEqual(readdirSync(parent), [], 'neither the merged folder nor a staging folder');
  });
}

test('the merged folder must be new or empty; an empty one is filled', (t) => {
  const dirs = shards();
  const full = tempDir('full');
  writeFileSync(join(full, 'old.txt'), 'x');
  t.throws(() => mergeRuns(dirs, { out: full }), { instanceOf: UsageError, message: /is not empty \(old.txt\)/ });
  t.throws(() => mergeRuns(dirs, { out: dirs[0]! }), { instanceOf: UsageError, message: /a shard's own folder/ });
  const empty = join(tempDir('empty'), 'run');
  mkdirSync(empty);
  t.is(mergeRuns(dirs, { out: empty }).cells.length, 3);
  t.true(existsSync(join(empty, 'report.json')));
});

test('linkTree: evidence hard-linked on one file system (no data copied), folders merged, a clash refused', (t) => {
  const root = tempDir('link');
  mkdirSync(join(root, 'a/cells/x/try-1'), { recursive: true });
  mkdirSync(join(root, 'b/cells/x/try-2'), { recursive: true });
  writeFileSync(join(root, 'a/cells/x/try-1/a.stdout'), 'one');
  writeFileSync(join(root, 'b/cells/x/try-2/a.stdout'), 'two');
  linkTree(join(root, 'a/cells'), join(root, 'm/cells'));
  linkTree(join(root, 'b/cells'), join(root, 'm/cells'));
  t.deepEqual(readdirSync(join(root, 'm/cells/x')).sort(), ['try-1', 'try-2']);
  t.is(statSync(join(root, 'm/cells/x/try-1/a.stdout')).ino, statSync(join(root, 'a/cells/x/try-1/a.stdout')).ino, 'a hard link');
  t.is(readFileSync(join(root, 'm/cells/x/try-2/a.stdout'), 'utf8'), 'two');
  t.throws(() => linkTree(join(root, 'a/cells'), join(root, 'm/cells')), { code: 'EEXIST' });
});
