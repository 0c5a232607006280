// `natmatrix compare BASE NEW` as a process, on reports written to a temporary folder: its exit codes
// (0 noise, 5 a regression, 2 bad input with one line), --json, --markdown. No root.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import type { Comparison, Report } from '../../harness/types.ts';
import { cell, direct, report } from './compare-fixtures.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** the command as a user runs it (`npm run compare -- …` runs exactly this) */
const compare = (args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [join(ROOT, 'harness/natmatrix.mjs'), 'compare', ...args], { reject: false, cwd: ROOT, env: { NO_COLOR: '1', ...env }, all: true });

const A = 'symmetric';

/** a folder with base/ and new/ run folders, and whatever else a test writes */
function runs(base: Report, next: Report): string {
  const d = mkdtempSync(join(tmpdir(), 'natmatrix-test-compare-cli-'));
  for (const [name, r] of [['base', base], ['new', next]] as const) {
    mkdirSync(join(d, name));
    writeFileSync(join(d, name, 'report.json'), JSON.stringify(r, null, 2));
  }
  return d;
}

/** 3 cells of 20 tries each; `third` is the last cell's connected tries in the new run */
function pair(third: number): string {
  const cols = ['full-cone', 'address-restricted', 'port-restricted'];
  return runs(
    report(cols.map((b) => cell(A, b, { tries: 20, paths: direct(20) }))),
    report(cols.map((b, i) => cell(A, b, { tries: 20, paths: direct(i === 2 ? third : b === 'full-cone' ? 19 : 20) })), { runId: 'new002' }),
  );
}

test('noise (20/20 → 19/20): exit 0, every cell unchanged', async (t) => {
  const d = pair(20);
  const r = await compare([join(d, 'base'), join(d, 'new', 'report.json')]);
  t.is(r.exitCode, 0, r.all);
  t.regex(r.stdout, /^3 cells: 3 unchanged, 0 improved, 0 regressed, 0 not comparable$/m);
  t.is(r.stderr, '');
});

test('a planted regression: exit 5, the regressed cell named with its test and p', async (t) => {
  const d = pair(0);
  const r = await compare([join(d, 'base'), join(d, 'new')]);
  t.is(r.exitCode, 5, r.all);
  t.regex(r.stdout, /^ {2}regressed {2}symmetric × port-restricted {2}connected 20\/20 → 0\/20 \(Fisher's exact test, p = 1\.5e-11\)$/m);
  t.regex(r.stdout, /2 unchanged, 0 improved, 1 regressed, 0 not comparable$/m);
  // a stricter alpha still sees it; one that nothing reaches does not
  t.is((await compare([join(d, 'base'), join(d, 'new'), '--alpha', '0.001'])).exitCode, 5);
  t.is((await compare([join(d, 'base'), join(d, 'new'), '--alpha', '1e-12'])).exitCode, 0);
  // relative paths are the user's (npm's INIT_CWD)
  const rel = await compare(['base', 'new'], { INIT_CWD: d });
  t.is(rel.exitCode, 5, rel.all);
});

test('--json prints the comparison on stdout (the text on stderr); --markdown the job summary', async (t) => {
  const d = pair(0);
  const r = await compare([join(d, 'base'), join(d, 'new'), '--json']);
  t.is(r.exitCode, 5, r.all);
  const c = JSON.parse(r.stdout) as Comparison;
  t.deepEqual(c.summary, { unchanged: 2, improved: 0, regressed: 1, notComparable: 0 });
  const bad = c.cells.find((x) => x.change === 'regressed');
  t.like(bad, { a: A, b: 'port-restricted', measure: 'connected', test: "Fisher's exact test", base: { tries: 20, successes: 20, direct: 20 }, next: { tries: 20, successes: 0, direct: 0 } });
  t.regex(r.stderr, /1 regressed/);
  const md = await compare([join(d, 'base'), join(d, 'new'), '--markdown']);
  t.is(md.exitCode, 5);
  t.regex(md.stdout, /^\| udp-punch \| symmetric × port-restricted \| 20\/20 connected \| 0\/20 connected \| 1\.5e-11 \|$/m);
});

/** exit 2 and one line on stderr that matches */
async function refused(t: import('ava').ExecutionContext, args: string[], pattern: RegExp) {
  const r = await compare(args);
  t.is(r.exitCode, 2, `${args.join(' ')}: ${r.all}`);
  t.is(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0]!, pattern);
}

test('bad input: exit 2 with one line', async (t) => {
  const d = pair(20);
  writeFileSync(join(d, 'corrupt.json'), '{"tool": "natmatrix", "cells": [');
  writeFileSync(join(d, 'not-a-report.json'), JSON.stringify({ hello: 'world' }));
  writeFileSync(join(d, 'other.json'), JSON.stringify(report([cell(A, 'full-cone', { tries: 20, paths: direct(20) })], { scenario: 'symmetric-vs-cone' })));
  const base = join(d, 'base');
  await refused(t, [base, join(d, 'corrupt.json')], /^natmatrix: .*corrupt\.json is not JSON \(/);
  await refused(t, [base, join(d, 'not-a-report.json')], /^natmatrix: .*not-a-report\.json is not a natmatrix report: tool: /);
  await refused(t, [base, join(d, 'missing')], /^natmatrix: no report at .*missing: no such file or folder$/);
  await refused(t, [base, join(d, 'other.json')], /^natmatrix: base is scenario full-matrix, new is scenario symmetric-vs-cone: a baseline from another scenario compares nothing$/);
  await refused(t, [base, join(d, 'new'), '--alpha', '2'], /^natmatrix: --alpha must be a number between 0 and 1 \(e\.g\. 0\.05, 0\.01\), not "2"$/);
  await refused(t, [base, join(d, 'new'), '--alpha', '0'], /--alpha must be a number between 0 and 1/);
  await refused(t, [base, join(d, 'new'), '--alpha', 'lots'], /--alpha must be a number between 0 and 1/);
  await refused(t, [base], /^natmatrix: give the new run too: natmatrix compare .*base NEW$/);
  await refused(t, [], /^natmatrix: which runs\? give the base run and the new one/);
  await refused(t, [base, base, base], /^natmatrix: give two runs \(BASE NEW\), not 3: /);
  await refused(t, [base, join(d, 'new'), '--bogus'], /^natmatrix: Unknown option '--bogus'/);
});

test('the natmatrix command knows compare: --help with exit 0', async (t) => {
  const r = await compare(['--help']);
  t.is(r.exitCode, 0, r.all);
  t.regex(r.stdout, /^usage: natmatrix compare BASE NEW/);
  t.regex(r.stdout, /5 a cell regressed significantly/);
  const top = await execa(process.execPath, [join(ROOT, 'harness/natmatrix.mjs'), '--help'], { reject: false, cwd: ROOT });
  t.regex(top.stdout, /^ {2}compare {4}compare two runs cell by cell/m);
});

test('--html FILE: the new run\'s page with the diff view, the regressed cell marked with its p', async (t) => {
  const d = pair(0);
  const r = await compare([join(d, 'base'), join(d, 'new'), '--html', join(d, 'diff.html')]);
  t.is(r.exitCode, 5, r.all);
  const html = readFileSync(join(d, 'diff.html'), 'utf8');
  const cellOf = (b: string) => new RegExp(`<button[^>]*data-a="symmetric"[^>]*data-b="${b}"[^>]*data-change="([a-z ]+)"`).exec(html)?.[1];
  t.is(cellOf('port-restricted'), 'regressed');
  t.is(cellOf('full-cone'), 'unchanged');
  t.regex(html, /1\.5e-11/);
  const bad = await compare([join(d, 'base'), join(d, 'new'), '--html', join(d, 'no/such/dir/x.html')]);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /^natmatrix: cannot write --html .*x\.html: ENOENT/);
});
