// natmatrix compare (issue 14, part 4): Fisher's exact test against R's fisher.test, and the verdict
// per cell on reports built here in the shape of a real report.json. No root.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { compareReports, fisherExact, formatP, loadReport, renderComparison, renderComparisonMarkdown, underpowered } from '../../harness/compare.ts';
import { UsageError } from '../../harness/errors.ts';
import type { CellComparison, Comparison } from '../../harness/types.ts';
import { cell, type Counts, direct, report } from './compare-fixtures.ts';

const A = 'symmetric';
const B = 'full-cone';

/** one cell compared: base counts against new counts */
function one(base: Counts, next: Counts, alpha?: number): CellComparison {
  const c = compareReports(report([cell(A, B, base)]), report([cell(A, B, next)], { runId: 'new002' }), alpha === undefined ? {} : { alpha });
  return c.cells[0]!;
}

// ---------------------------------------------------------------------------------------------
// Fisher's exact test: R's fisher.test(matrix(c(k1, n1 - k1, k2, n2 - k2), 2, byrow = TRUE))$p.value

const close = (actual: number, expected: number, rel = 1e-4) => Math.abs(actual - expected) <= rel * Math.abs(expected);

test('fisherExact: known values (R fisher.test)', (t) => {
  const cases: Array<[number, number, number, number, number]> = [
    [20, 20, 0, 20, 1.450889e-11],
    [3, 3, 0, 3, 0.1],
    [4, 4, 0, 4, 0.02857143],
    [10, 10, 9, 10, 1],
    [19, 20, 20, 20, 1],
    [1, 10, 11, 14, 0.002759456], // the textbook table (1, 9) against (11, 3)
    [7, 10, 2, 10, 0.06977852],
    [300, 3000, 250, 3000, 0.02828528], // thousands of tries: still exact
    [2000, 4000, 2100, 4000, 0.02679511],
    // tables exactly as likely as the observed one, which rounding must not drop (R's tolerance)
    [0, 1, 4, 7, 1],
    [1, 1, 4, 9, 1],
    [0, 1, 6, 11, 1],
    [0, 1, 9, 17, 1],
    [0, 1, 17, 33, 1],
  ];
  for (const [k1, n1, k2, n2, p] of cases) {
    const got = fisherExact(k1, n1, k2, n2);
    t.true(close(got, p), `${k1}/${n1} vs ${k2}/${n2}: ${got}, R says ${p}`);
  }
});

test('fisherExact: symmetric in its samples and in success/failure, 1 with nothing to tell', (t) => {
  t.is(fisherExact(5, 12, 9, 11), fisherExact(9, 11, 5, 12));
  t.true(close(fisherExact(5, 12, 9, 11), fisherExact(7, 12, 2, 11), 1e-12));
  t.is(fisherExact(0, 0, 3, 5), 1, 'an empty sample');
  t.is(fisherExact(0, 5, 0, 7), 1, 'no successes at all');
  t.is(fisherExact(5, 5, 7, 7), 1, 'nothing but successes');
  const tiny = fisherExact(3000, 3000, 0, 3000);
  t.true(tiny >= 0 && tiny < 1e-300, `${tiny}`);
  for (let n = 1; n <= 30; n++) for (let k = 0; k <= n; k++) t.true(fisherExact(k, n, k, n) === 1 || close(fisherExact(k, n, k, n), 1, 1e-9), `${k}/${n} twice`);
});

test('fisherExact refuses counts that are no counts', (t) => {
  t.throws(() => fisherExact(3, 2, 0, 2), { instanceOf: RangeError });
  t.throws(() => fisherExact(-1, 2, 0, 2), { instanceOf: RangeError });
  t.throws(() => fisherExact(1.5, 2, 0, 2), { instanceOf: RangeError });
});

test('formatP: two significant digits, exponents below 0.001', (t) => {
  t.is(formatP(1.450889e-11), 'p = 1.5e-11');
  t.is(formatP(0.002759456), 'p = 0.0028');
  t.is(formatP(0.1), 'p = 0.1');
  t.is(formatP(1), 'p = 1');
});

// ---------------------------------------------------------------------------------------------
// the verdict per cell

test('a planted regression (20/20 → 0/20) is regressed, with the test and its p-value', (t) => {
  const c = one({ tries: 20, paths: direct(20) }, { tries: 20 });
  t.is(c.change, 'regressed');
  t.is(c.test, "Fisher's exact test");
  t.is(c.measure, 'connected');
  t.true(close(c.pValue!, 1.450889e-11));
  t.is(c.reason, "connected 20/20 → 0/20 (Fisher's exact test, p = 1.5e-11)");
  t.deepEqual(c.base, { tries: 20, successes: 20, direct: 20, errors: 0, outcome: 'direct' });
  t.deepEqual(c.next, { tries: 20, successes: 0, direct: 0, errors: 0, outcome: 'failed' });
});

test('noise is unchanged: one unlucky try in 20, 1/2 → 0/2, and 3/3 → 0/3 (too few tries to tell)', (t) => {
  const unlucky = one({ tries: 20, paths: direct(20) }, { tries: 20, paths: direct(19) });
  t.is(unlucky.change, 'unchanged');
  t.is(unlucky.pValue, 1);
  const two = one({ tries: 2, paths: direct(1) }, { tries: 2 });
  t.is(two.change, 'unchanged');
  const three = one({ tries: 3, paths: direct(3) }, { tries: 3 });
  t.is(three.change, 'unchanged');
  t.true(close(three.pValue!, 0.1));
});

test('an improvement (0/20 → 20/20) is improved; the same at alpha 1e-12 is unchanged', (t) => {
  const c = one({ tries: 20 }, { tries: 20, paths: direct(20) });
  t.is(c.change, 'improved');
  t.is(c.measure, 'connected');
  t.is(one({ tries: 20 }, { tries: 20, paths: direct(20) }, 1e-12).change, 'unchanged');
  t.is(one({ tries: 20, paths: direct(20) }, { tries: 20 }, 1e-12).change, 'unchanged', 'and a drop too');
});

test('alpha decides: 4/4 → 0/4 (p ≈ 0.029) is regressed at 0.05, unchanged at 0.01', (t) => {
  t.is(one({ tries: 4, paths: direct(4) }, { tries: 4 }).change, 'regressed');
  t.is(one({ tries: 4, paths: direct(4) }, { tries: 4 }, 0.01).change, 'unchanged');
});

test('direct → relayed with the same connected rate is regressed on the direct measure', (t) => {
  const c = one({ tries: 20, paths: direct(20) }, { tries: 20, paths: { relayed: 20 } });
  t.is(c.change, 'regressed');
  t.is(c.measure, 'direct');
  t.is(c.reason, "direct 20/20 → 0/20 (Fisher's exact test, p = 1.5e-11); connected 20/20 → 20/20 (p = 1)");
  t.is(c.next?.direct, 0);
  t.is(c.next?.successes, 20);
  // and back: relayed → direct is an improvement of the direct measure
  const back = one({ tries: 20, paths: { relayed: 20 } }, { tries: 20, paths: direct(20) });
  t.is(back.change, 'improved');
  t.is(back.measure, 'direct');
});

test('every path but the relay counts as direct', (t) => {
  const c = one({ tries: 10, paths: { 'direct-udp': 5, 'direct-tcp': 3, matconnect: 2 } }, { tries: 10, paths: { 'direct-tcp': 10 } });
  t.is(c.change, 'unchanged');
  t.is(c.base?.direct, 10);
});

test('a drop wins over a rise: fewer direct, more connected is regressed', (t) => {
  // base: 20 direct of 40, 20 failed; new: 40 connected, all relayed
  const c = one({ tries: 40, paths: direct(20) }, { tries: 40, paths: { relayed: 40 } });
  t.is(c.change, 'regressed');
  t.is(c.measure, 'direct');
});

test('unchanged reports the measure with the smaller p', (t) => {
  const c = one({ tries: 10, paths: { 'direct-udp': 8, relayed: 2 } }, { tries: 10, paths: { 'direct-udp': 5, relayed: 3 } });
  t.is(c.change, 'unchanged');
  t.is(c.measure, 'direct');
  t.true(close(c.pValue!, fisherExact(8, 10, 5, 10)));
});

test('errored tries are left out of the samples', (t) => {
  // 20/20 against 10 connected and 10 errored: 10/10, not 10/20, so no regression
  const c = one({ tries: 20, paths: direct(20) }, { tries: 20, paths: direct(10), errors: 10 });
  t.is(c.change, 'unchanged');
  t.regex(c.reason, /^connected 20\/20 → 10\/10 .*; errored tries left out: 0 → 10$/);
  // and in the base run: 10 connected, 10 errored is 10/10, no worse than 20/20
  const base = one({ tries: 20, paths: direct(10), errors: 10 }, { tries: 20, paths: direct(20) });
  t.is(base.change, 'unchanged');
  t.regex(base.reason, /^connected 10\/10 → 20\/20 \(Fisher's exact test, p = 1\); errored tries left out: 10 → 0$/);
  // 20/20 against 0 connected, 10 failed, 10 errored: 0/10 is still a regression
  t.is(one({ tries: 20, paths: direct(20) }, { tries: 20, errors: 10 }).change, 'regressed');
});

test('not comparable: all tries errored, no tries, only in one run', (t) => {
  const errored = one({ tries: 20, paths: direct(20) }, { tries: 20, errors: 20 });
  t.is(errored.change, 'not comparable');
  t.is(errored.pValue, null);
  t.is(errored.test, null);
  t.is(errored.measure, null);
  t.regex(errored.reason, /all 20 tries errored in the new run/);
  t.is(one({ tries: 3, errors: 3 }, { tries: 20 }).change, 'not comparable');
  const none = one({ tries: 0 }, { tries: 20, paths: direct(20) });
  t.is(none.change, 'not comparable');
  t.is(none.reason, 'no tries in the base run');

  const base = report([cell(A, B, { tries: 5, paths: direct(5) }), cell(A, 'symmetric', { tries: 5 })]);
  const next = report([cell(A, B, { tries: 5, paths: direct(5) }), cell('full-cone', B, { tries: 5, paths: direct(5) })], { runId: 'new002' });
  const c = compareReports(base, next);
  t.deepEqual(
    c.cells.map((x) => [x.a, x.b, x.change, x.reason]),
    [
      [A, B, 'unchanged', "connected 5/5 → 5/5 (Fisher's exact test, p = 1)"],
      [A, 'symmetric', 'not comparable', 'only in the base run'],
      ['full-cone', B, 'not comparable', 'only in the new run'],
    ],
  );
  t.is(c.cells[1]!.next, null);
  t.is(c.cells[2]!.base, null);
  t.deepEqual(c.summary, { unchanged: 1, improved: 0, regressed: 0, notComparable: 2 });
});

test('cells are matched by agent: the same pairing by another agent is not comparable', (t) => {
  const base = report([cell(A, B, { tries: 20, paths: direct(20), agent: 'udp-punch' })]);
  const next = report([cell(A, B, { tries: 20, agent: 'tcp-punch' })], { runId: 'new002' });
  const c = compareReports(base, next);
  t.is(c.cells.length, 1);
  t.is(c.cells[0]!.change, 'not comparable');
  t.is(c.cells[0]!.reason, 'agent "udp-punch" in the base run, agent "tcp-punch" in the new run: different agents are different stacks');
  // two agents side by side: each compared with its own
  const two = compareReports(
    report([cell(A, B, { tries: 20, paths: direct(20), agent: 'x' }), cell(A, B, { tries: 20, agent: 'y' })]),
    report([cell(A, B, { tries: 20, agent: 'x' }), cell(A, B, { tries: 20, agent: 'y' })], { runId: 'new002' }),
  );
  t.deepEqual(two.cells.map((x) => [x.agent, x.change]), [['x', 'regressed'], ['y', 'unchanged']]);
});

test('a report from before agents had names compares with a run of one agent', (t) => {
  const old = report([{ ...cell(A, B, { tries: 20, paths: direct(20) }), agent: undefined as unknown as string }]);
  const c = compareReports(old, report([cell(A, B, { tries: 20 })], { runId: 'new002' }));
  t.is(c.cells[0]!.change, 'regressed');
});

test('runs of different scenarios are refused with one line', (t) => {
  const e = t.throws(() => compareReports(report([]), report([], { scenario: 'symmetric-vs-cone' })), { instanceOf: UsageError });
  t.is(e?.message, 'base is scenario full-matrix, new is scenario symmetric-vs-cone: a baseline from another scenario compares nothing');
  t.throws(() => compareReports(report([]), report([]), { alpha: 1 }), { instanceOf: UsageError });
  t.throws(() => compareReports(report([]), report([]), { alpha: 0 }), { instanceOf: UsageError });
});

test('the comparison names both runs and the alpha', (t) => {
  const c = compareReports(report([]), report([], { runId: 'new002', version: '0.2.0' }), { alpha: 0.01 });
  t.deepEqual(c.base, { scenario: 'full-matrix', runId: 'base01', version: '0.1.0', startedAt: '2026-11-29T12:28:23.000Z' });
  t.is(c.next.version, '0.2.0');
  t.is(c.alpha, 0.01);
});

// ---------------------------------------------------------------------------------------------
// rendering

/** a 5-cell comparison: one regressed, one improved, one unchanged, one only in the new run, one all errors */
function mixed(): Comparison {
  const base = report([
    cell(A, B, { tries: 20, paths: direct(20) }),
    cell(A, 'port-restricted', { tries: 20 }),
    cell(A, 'address-restricted', { tries: 20, paths: direct(20) }),
    cell(B, B, { tries: 20, paths: direct(20) }),
  ]);
  const next = report(
    [
      cell(A, B, { tries: 20 }),
      cell(A, 'port-restricted', { tries: 20, paths: direct(20) }),
      cell(A, 'address-restricted', { tries: 20, paths: direct(19) }),
      cell(B, B, { tries: 20, errors: 20 }),
      cell(B, A, { tries: 20, paths: direct(20) }),
    ],
    { runId: 'new002', startedAt: '2026-11-30T08:00:00.000Z' },
  );
  return compareReports(base, next);
}

test('renderComparison: header, regressed first, unchanged only counted, the tally', (t) => {
  const text = renderComparison(mixed(), { color: false });
  const lines = text.trimEnd().split('\n');
  t.is(lines[0], "natmatrix compare: full-matrix — base run base01 (2026-11-29 12:28 UTC) → new run new002 (2026-11-30 08:00 UTC) · Fisher's exact test, α = 0.05");
  t.regex(lines[1]!, /^ {2}regressed +symmetric × full-cone +connected 20\/20 → 0\/20 \(Fisher's exact test, p = 1\.5e-11\)$/);
  t.regex(lines[2]!, /^ {2}improved +symmetric × port-restricted +connected 0\/20 → 20\/20/);
  t.regex(lines[3]!, /^ {2}not comparable +full-cone × full-cone +all 20 tries errored in the new run/);
  t.regex(lines[4]!, /^ {2}not comparable +full-cone × symmetric +only in the new run$/);
  t.is(lines[5], '5 cells: 1 unchanged, 1 improved, 1 regressed, 2 not comparable');
  t.is(lines.length, 6);
  t.false(text.includes('address-restricted'), 'unchanged cells are not listed');
  t.false(text.includes('\x1b['), 'no colour when not asked');
  t.true(renderComparison(mixed(), { color: true }).includes('\x1b['));
});

test('renderComparison says when big moves were too few tries to tell', (t) => {
  const c = compareReports(report([cell(A, B, { tries: 3, paths: direct(3) })]), report([cell(A, B, { tries: 3 })], { runId: 'new002' }));
  t.is(c.cells[0]!.change, 'unchanged');
  t.is(underpowered(c).length, 1);
  t.regex(renderComparison(c, { color: false }), /^note: 1 cell moved by half the tries or more without reaching p < 0\.05 \(e\.g\. udp-punch: symmetric × full-cone: connected 3\/3 → 0\/3 \(Fisher's exact test, p = 0\.1\)\): too few tries/m);
  // a steady cell gets no note
  const steady = compareReports(report([cell(A, B, { tries: 3, paths: direct(3) })]), report([cell(A, B, { tries: 3, paths: direct(3) })]));
  t.is(underpowered(steady).length, 0);
  t.false(renderComparison(steady, { color: false }).includes('note:'));
});

test('renderComparison groups many cells not comparable for one reason', (t) => {
  const cols = ['c1', 'c2', 'c3', 'c4', 'c5'];
  const c = compareReports(report([cell(A, B, { tries: 2 })]), report([cell(A, B, { tries: 2 }), ...cols.map((b) => cell(A, b, { tries: 2, agent: 'other' }))], { runId: 'new002' }));
  const text = renderComparison(c, { color: false });
  t.regex(text, /^ {2}not comparable {2}5 cells {2}only in the new run: other: symmetric × c1, other: symmetric × c2, other: symmetric × c3, and 2 more$/m);
  t.is(text.trimEnd().split('\n').length, 3);
});

test('renderComparisonMarkdown: a table of the regressed and of the improved cells', (t) => {
  const md = renderComparisonMarkdown(mixed());
  t.true(md.startsWith('### natmatrix compare: full-matrix\n'), md);
  t.true(md.includes('**1 regressed**, 1 improved, 1 unchanged, 2 not comparable'), md);
  t.true(md.includes('#### Regressed\n\n| agent | pairing | base | new | p |\n|---|---|---|---|---|\n| udp-punch | symmetric × full-cone | 20/20 connected | 0/20 connected | 1.5e-11 |'), md);
  t.true(md.includes('#### Improved\n\n| agent | pairing | base | new | p |\n|---|---|---|---|---|\n| udp-punch | symmetric × port-restricted | 0/20 connected | 20/20 connected | 1.5e-11 |'), md);
  t.true(md.includes('- udp-punch: full-cone × symmetric: only in the new run'), md);
  t.false(md.includes('address-restricted'), 'unchanged cells are not listed');
  const quiet = renderComparisonMarkdown(compareReports(report([cell(A, B, { tries: 5, paths: direct(5) })]), report([cell(A, B, { tries: 5, paths: direct(5) })])));
  t.false(quiet.includes('####'), quiet);
  t.true(quiet.includes('0 regressed, 0 improved, 1 unchanged, 0 not comparable'), quiet);
});

// ---------------------------------------------------------------------------------------------
// loading

const dir = () => mkdtempSync(join(tmpdir(), 'natmatrix-test-compare-'));

test('loadReport reads a report.json or a run folder holding one', (t) => {
  const d = dir();
  const r = report([cell(A, B, { tries: 3, paths: direct(3) })]);
  writeFileSync(join(d, 'report.json'), JSON.stringify(r));
  t.deepEqual(loadReport(join(d, 'report.json')), r);
  t.deepEqual(loadReport(d), r);
});

test('loadReport: a missing file, not JSON, not a report, inconsistent counts: UsageError naming the file', (t) => {
  const d = dir();
  const bad = (path: string, pattern: RegExp) => {
    const e = t.throws(() => loadReport(path), { instanceOf: UsageError }, path);
    t.regex(e?.message ?? '', pattern);
    t.false(e?.message.includes('\n'), 'one line');
  };
  bad(join(d, 'nope.json'), /^no report at .*nope\.json: no such file or folder$/);
  mkdirSync(join(d, 'empty'));
  bad(join(d, 'empty'), /^no report\.json in .*empty \(is it a run folder\?\)$/);
  writeFileSync(join(d, 'cut.json'), JSON.stringify(report([])).slice(0, 40));
  bad(join(d, 'cut.json'), /^.*cut\.json is not JSON \(/);
  writeFileSync(join(d, 'other.json'), JSON.stringify({ name: 'some package', version: '1.0.0' }));
  bad(join(d, 'other.json'), /^.*other\.json is not a natmatrix report: tool: expected "natmatrix"/);
  const typo = report([cell(A, B, { tries: 3 })]) as unknown as { cells: Array<Record<string, unknown>> };
  typo.cells[0]!.tries = 'three';
  writeFileSync(join(d, 'typo.json'), JSON.stringify(typo));
  bad(join(d, 'typo.json'), /typo\.json is not a natmatrix report: cells\.0\.tries: /);
  const lying = report([cell(A, B, { tries: 3, paths: direct(3) })]);
  lying.cells[0]!.tries = 5;
  writeFileSync(join(d, 'lying.json'), JSON.stringify(lying));
  bad(join(d, 'lying.json'), /lying\.json is not a consistent natmatrix report: cells\.0: successes \+ failures \+ errors \(3\) is not tries \(5\)/);
  const twice = report([cell(A, B, { tries: 3 }), cell(A, B, { tries: 3 })]);
  writeFileSync(join(d, 'twice.json'), JSON.stringify(twice));
  bad(join(d, 'twice.json'), /cells\.1: a second cell for udp-punch symmetric × full-cone/);
});
