// JUnit XML (the dialect Jenkins, GitHub test reporters and GitLab read): one <testsuite> per agent, one
// <testcase> per cell. A pure function of a `Report` (and, optionally, its tries); no I/O.
//
//   <testsuites name="natmatrix <scenario>" tests failures errors skipped time timestamp>
//     <testsuite name="natmatrix <scenario> (<agent>)" …>  <properties>run, host, options, agent</properties>
//       <testcase classname="natmatrix.<scenario>.<agent>" name="<a> × <b>" time>
//         <failure message="expected direct, got failed 0/3">reasons, notes, evidence path</failure>
//         <error message="error: 1 of 3 tries errored: …">…</error>            (a cell in error)
//         <skipped message="…"/>                          (a pairing of the plan without a cell)
//         <system-out>the tries: connected/tries, paths, Wilson interval, time-to-direct, each try</system-out>
//
// A cell not as expected is a <failure>, a cell in error an <error>; in observe mode nothing is a failure
// (errors still are: they fail an observed run too).
//
// Time. Pairings run side by side (--jobs lanes), so the sum of the tries' durations is not the run's
// time. Every time here is a share of the run's wall-clock time (report.durationMs): <testsuites> has all
// of it, each <testsuite> the share of its agent, each <testcase> the share of its cell, so they add up.
// With the tries (attempts.json) a share is in proportion to how long the tries ran (each try counts
// the longer of its two agents); without them, each try counts the same. <system-out> states the tries'
// own durations when known.

import { join } from 'node:path';
import { expectationText } from './expect.ts';
import { cellAt } from './report.ts';
import type { AgentReport, Attempt, Cell, Report } from './types.ts';

export interface JunitOptions {
  /** the run's tries (attempts.json): each try's result in <system-out>, and time shares by duration */
  attempts?: Attempt[] | undefined;
}

/** Characters XML 1.0 does not allow anywhere (C0 controls but tab, LF, CR; lone surrogates; U+FFFE/F). */
const ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Text safe inside an element. */
export function xmlText(s: string): string {
  return s.replace(ILLEGAL, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Text safe inside a double- or single-quoted attribute; line breaks and tabs survive normalisation. */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

const attrs = (xs: Record<string, string | number>): string =>
  Object.entries(xs).map(([k, v]) => ` ${k}="${xmlAttr(String(v))}"`).join('');

const secs = (ms: number): string => (Math.max(0, ms) / 1000).toFixed(3);
const pct = (x: number): string => `${Math.round(x * 100)} %`;
const msText = (x: number): string => `${Math.round(x * 10) / 10} ms`;
/** a classname part: dots would split the class hierarchy, and whitespace reads badly in CI UIs */
const part = (s: string): string => s.replace(/[.\s]+/g, '_');

/** "direct via direct-tcp", or the outcome */
const got = (c: Cell): string => (c.path !== null && c.path !== c.outcome ? `${c.outcome} via ${c.path}` : c.outcome);

/** "expected direct, got failed 0/3" (and what makes it differ when the outcome alone does not say) */
export function failureMessage(c: Cell): string {
  if (c.rate) {
    const by = c.rate.path ? ` by ${c.rate.path}` : '';
    return `expected ${expectationText(c.expected)}, got ${c.rate.successes}/${c.tries} connected${by} (95 % Wilson interval ${Math.round(c.rate.low * 100)}–${pct(c.rate.high)})`;
  }
  return `expected ${expectationText(c.expected)}, got ${got(c)} ${c.successes}/${c.tries}${c.flaky ? ' (flaky: the tries differed)' : ''}`;
}

/** "error: 1 of 3 tries errored: agent a exited 2 …" */
export function errorMessage(c: Cell): string {
  const first = c.reasons[0];
  const head = c.tries === 0 ? 'error: no try ran' : `error: ${c.errors} of ${c.tries} tr${c.tries === 1 ? 'y' : 'ies'} errored`;
  const reason = first === undefined ? '' : `: ${first.length > 300 ? `${first.slice(0, 300)}…` : first}`;
  return head + reason;
}

const tryDurationMs = (t: Attempt): number => Math.max(t.agents.a.durationMs, t.agents.b.durationMs, 0);

function tryLine(t: Attempt): string {
  const bits = [`try ${t.try}: ${t.outcome}`];
  if (t.path) bits.push(t.path);
  if (t.timeToDirectMs !== null) bits.push(`time-to-direct ${msText(t.timeToDirectMs)}`);
  bits.push(`lane ${t.lane}`, `ran ${(tryDurationMs(t) / 1000).toFixed(1)} s`);
  const exits = (['a', 'b'] as const).map((r) => {
    const x = t.agents[r];
    const how = x.timedOut ? 'timed out' : x.stopped ? 'stopped' : x.signal ? `killed by ${x.signal}` : `exit ${x.exitCode ?? '?'}`;
    return `${r} ${how}${x.verdictProblem ? ` (${x.verdictProblem})` : ''}`;
  });
  bits.push(exits.join(', '));
  const lines = [bits.join(' · ')];
  if (t.reason) lines.push(`    reason: ${t.reason}`);
  for (const n of t.notes) lines.push(`    note: ${n}`);
  lines.push(`    evidence: ${t.evidence}`);
  return lines.join('\n');
}

/** What a person reads in a testcase's output: the tries' summary, then each try when known. */
function cellOutput(report: Report, c: Cell, tries: Attempt[]): string {
  const sr = c.successRate;
  const paths = Object.entries(c.paths).map(([p, n]) => `${p} ×${n}`).join(', ');
  const ttd = c.timeToDirectMs;
  const lines = [
    `${c.a} × ${c.b}${c.agent ? ` (agent ${c.agent})` : ''}: ${got(c)}${c.flaky ? ', flaky' : ''}`,
    `expected: ${expectationText(c.expected)} · ${c.outcome === 'error' ? 'error' : c.match ? 'as expected' : 'NOT as expected'}`,
    `connected: ${c.successes}/${c.tries} (${pct(sr.rate)}, 95 % Wilson interval ${Math.round(sr.low * 100)}–${pct(sr.high)}) · failed ${c.failures} · errors ${c.errors}`,
    `paths: ${paths || 'none connected'}`,
    ttd.samples.length
      ? `time-to-direct: median ${msText(ttd.median ?? 0)}, max ${msText(ttd.max ?? 0)} (samples ${ttd.samples.map((x) => Math.round(x * 10) / 10).join(', ')} ms)`
      : 'time-to-direct: no connected try',
  ];
  if (c.rate) {
    lines.push(`rate: ${c.rate.successes}/${c.tries}${c.rate.path ? ` by ${c.rate.path}` : ''}, interval ${Math.round(c.rate.low * 100)}–${pct(c.rate.high)} against ≥ ${pct(c.rate.atLeast)}: ${c.rate.confirmed ? 'confirmed' : c.rate.holds ? 'holds' : 'refuted'}`);
  }
  for (const r of c.reasons) lines.push(`reason: ${r}`);
  for (const n of c.notes) lines.push(`note: ${n}`);
  if (tries.length) {
    const total = tries.reduce((s, t) => s + tryDurationMs(t), 0);
    lines.push(`tries (${(total / 1000).toFixed(1)} s in all, each counting its longer-running agent):`);
    for (const t of tries) lines.push(tryLine(t));
  }
  lines.push(`evidence: ${join(report.outDir, c.evidence)}`);
  return lines.join('\n');
}

interface Case {
  a: string;
  b: string;
  cell: Cell | undefined;
  tries: Attempt[];
  /** how much of the run this case took, in arbitrary units (shares are taken of report.durationMs) */
  weight: number;
}

export function renderJunit(report: Report, opts: JunitOptions = {}): string {
  const observe = report.options.observe === true;
  const agents: Array<AgentReport | null> = report.agents.length ? report.agents : [null];
  const byCell = new Map<string, Attempt[]>();
  for (const t of opts.attempts ?? []) {
    const k = `${t.agent}\u0000${t.a}\u0000${t.b}`;
    byCell.set(k, [...(byCell.get(k) ?? []), t]);
  }
  const timed = (opts.attempts?.length ?? 0) > 0;

  const suites = agents.map((agent) => {
    const cases: Case[] = report.rows.flatMap((a) =>
      report.cols.map((b) => {
        const cell = cellAt(report, a, b, agent?.name);
        const tries = cell ? (byCell.get(`${cell.agent}\u0000${a}\u0000${b}`) ?? []).sort((x, y) => x.try - y.try) : [];
        const weight = timed ? tries.reduce((s, t) => s + tryDurationMs(t), 0) : (cell?.tries ?? 0);
        return { a, b, cell, tries, weight };
      }),
    );
    return { agent, cases, weight: cases.reduce((s, c) => s + c.weight, 0) };
  });
  const allWeight = suites.reduce((s, x) => s + x.weight, 0);
  const share = (w: number): number => (allWeight > 0 ? (report.durationMs * w) / allWeight : 0);

  const totals = { tests: 0, failures: 0, errors: 0, skipped: 0 };
  const timestamp = report.startedAt.replace(/\.\d+Z?$|Z$/, '');
  const body = suites.map(({ agent, cases, weight }) => {
    const name = agent?.name ?? report.cells[0]?.agent ?? '';
    const classname = ['natmatrix', part(report.scenario), ...(name ? [part(name)] : [])].join('.');
    const counts = { tests: cases.length, failures: 0, errors: 0, skipped: 0 };
    const testcases = cases.map(({ a, b, cell: c, tries, weight: w }) => {
      const head = `    <testcase${attrs({ classname, name: `${a} × ${b}`, time: secs(share(w)) })}>`;
      if (!c) {
        counts.skipped++;
        return `${head}\n      <skipped${attrs({ message: 'no cell for this pairing in the report' })}/>\n    </testcase>`;
      }
      const evidence = `evidence: ${join(report.outDir, c.evidence)}`;
      const detail = [...c.reasons.map((r) => `reason: ${r}`), ...c.notes.map((n) => `note: ${n}`), evidence].join('\n');
      const inner: string[] = [];
      if (c.outcome === 'error') {
        counts.errors++;
        inner.push(`      <error${attrs({ message: errorMessage(c), type: 'error' })}>${xmlText(detail)}</error>`);
      } else if (c.tries === 0) {
        counts.skipped++;
        inner.push(`      <skipped${attrs({ message: 'no try ran' })}/>`);
      } else if (!c.match && !observe) {
        counts.failures++;
        inner.push(`      <failure${attrs({ message: failureMessage(c), type: 'mismatch' })}>${xmlText(detail)}</failure>`);
      }
      inner.push(`      <system-out>${xmlText(cellOutput(report, c, tries))}</system-out>`);
      return `${head}\n${inner.join('\n')}\n    </testcase>`;
    });
    totals.tests += counts.tests;
    totals.failures += counts.failures;
    totals.errors += counts.errors;
    totals.skipped += counts.skipped;
    const props: Record<string, string | number | boolean | null> = {
      'natmatrix.version': report.version,
      'natmatrix.runId': report.runId,
      'natmatrix.scenario': report.scenario,
      'natmatrix.startedAt': report.startedAt,
      'natmatrix.durationMs': report.durationMs,
      'natmatrix.outDir': report.outDir,
      'natmatrix.tries': report.options.tries,
      'natmatrix.timeoutMs': report.options.timeoutMs,
      'natmatrix.jobs': report.options.jobs,
      'natmatrix.observe': observe,
      ...(report.planId ? { 'natmatrix.planId': report.planId } : {}),
      ...(report.shard ? { 'natmatrix.shard': `${report.shard.index}/${report.shard.count}` } : {}),
      ...(report.merged ? { 'natmatrix.mergedShards': report.merged.shards.length } : {}),
      ...(agent ? { 'natmatrix.agent': agent.name, 'natmatrix.agent.source': agent.source } : {}),
      ...Object.fromEntries(Object.entries(report.host).map(([k, v]) => [`host.${k}`, v])),
    };
    const properties = Object.entries(props).map(([k, v]) => `      <property${attrs({ name: k, value: String(v) })}/>`);
    const suiteName = `natmatrix ${report.scenario}${name ? ` (${name})` : ''}`;
    return [
      `  <testsuite${attrs({ name: suiteName, ...counts, time: secs(share(weight)), timestamp })}>`,
      '    <properties>',
      ...properties,
      '    </properties>',
      ...testcases,
      '  </testsuite>',
    ].join('\n');
  });

  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: `natmatrix ${report.scenario}`, ...totals, time: secs(report.durationMs), timestamp })}>`,
    ...body,
    '</testsuites>',
    '',
  ].join('\n');
}
