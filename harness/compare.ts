// Regression gating (issue 14, part 4): two runs of one scenario compared cell by cell. A cell is
// `regressed` or `improved` only when the change is unlikely to be luck: Fisher's exact test on its
// tries, two measures (tries that connected by any path; tries that connected directly). One unlucky
// try in 20 is no regression; 0/20 after 20/20 is.
//
// Pure functions of two reports, except loadReport, which reads one (a report.json or a run folder).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { styleText } from 'node:util';
import { z } from 'zod';
import { issueLines, UsageError } from './errors.ts';
import { esc } from './report.ts';
import type { Cell, CellChange, CellComparison, ComparedCounts, Comparison, Report } from './types.ts';

export const FISHER = "Fisher's exact test";
export const DEFAULT_ALPHA = 0.05;

// ---------------------------------------------------------------------------------------------
// Fisher's exact test

/** log(i!) for i = 0…, grown on demand (exact enough: the sums stay well within 1e-7 of each other) */
const logFactorials: number[] = [0];

function logFactorial(n: number): number {
  for (let i = logFactorials.length; i <= n; i++) logFactorials.push(logFactorials[i - 1]! + Math.log(i));
  return logFactorials[n]!;
}

const logChoose = (n: number, k: number): number => logFactorial(n) - logFactorial(k) - logFactorial(n - k);

/**
 * The two-sided p-value of Fisher's exact test on the 2×2 table of two samples' successes and
 * failures: k1 of n1 against k2 of n2. With the margins fixed, the first sample's count follows the
 * hypergeometric distribution; the p-value is the probability of every table no more likely than the
 * observed one (within a relative 1e-7, as R's fisher.test). Log-factorials keep it exact and stable
 * for samples of thousands.
 */
export function fisherExact(k1: number, n1: number, k2: number, n2: number): number {
  for (const [name, v] of [['k1', k1], ['n1', n1], ['k2', k2], ['n2', n2]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`fisherExact: ${name} must be a whole number ≥ 0, not ${v}`);
  }
  if (k1 > n1 || k2 > n2) throw new RangeError(`fisherExact: successes exceed tries (${k1}/${n1}, ${k2}/${n2})`);
  const total = n1 + n2;
  const hits = k1 + k2;
  const lo = Math.max(0, hits - n2);
  const hi = Math.min(n1, hits);
  if (lo === hi) return 1;
  const base = logChoose(total, hits);
  const logP = (x: number) => logChoose(n1, x) + logChoose(n2, hits - x) - base;
  const observed = logP(k1);
  const limit = observed + Math.log1p(1e-7);
  // log-sum-exp over the tables at most as likely as the observed one, scaled by the observed one
  let sum = 0;
  for (let x = lo; x <= hi; x++) {
    const lp = logP(x);
    if (lp <= limit) sum += Math.exp(lp - observed);
  }
  return Math.min(1, Math.exp(observed + Math.log(sum)));
}

// ---------------------------------------------------------------------------------------------
// loading a report

const count = z.number().int().min(0);

/** What the comparison reads of a report; anything else in it passes through unchecked. */
const reportSchema = z.looseObject({
  tool: z.literal('natmatrix', { error: 'expected "natmatrix" (a natmatrix report.json says so)' }),
  version: z.string(),
  scenario: z.string(),
  runId: z.string(),
  startedAt: z.string(),
  cells: z.array(
    z.looseObject({
      // reports from before several agents existed have none: one unnamed agent
      agent: z.string().default(''),
      a: z.string(),
      b: z.string(),
      outcome: z.enum(['direct', 'relayed', 'failed', 'error']),
      tries: count,
      successes: count,
      failures: count,
      errors: count,
      paths: z.record(z.string(), count),
    }),
  ),
});

/** Counts that contradict each other: a report edited by hand, or cut short. */
function inconsistencies(cells: Array<Pick<Cell, 'agent' | 'a' | 'b' | 'tries' | 'successes' | 'failures' | 'errors' | 'paths'>>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  cells.forEach((c, i) => {
    if (c.successes + c.failures + c.errors !== c.tries) out.push(`cells.${i}: successes + failures + errors (${c.successes + c.failures + c.errors}) is not tries (${c.tries})`);
    const byPath = Object.values(c.paths).reduce((s, n) => s + n, 0);
    if (byPath !== c.successes) out.push(`cells.${i}: the paths' tries (${byPath}) are not its successes (${c.successes})`);
    const key = cellKey(c);
    if (seen.has(key)) out.push(`cells.${i}: a second cell for ${who(c)}`);
    seen.add(key);
  });
  return out;
}

/** "3 problems; and 2 more": what is wrong with a file, on one line */
const firstFew = (problems: string[], max = 3): string => problems.slice(0, max).join('; ') + (problems.length > max ? `; and ${problems.length - max} more` : '');

/**
 * A run's report: `path` is a report.json or a run folder holding one. A missing file, a file that is
 * not JSON, or JSON that is not a natmatrix report is a UsageError naming the file and what is wrong.
 */
export function loadReport(path: string): Report {
  let file = path;
  try {
    if (statSync(path).isDirectory()) file = join(path, 'report.json');
  } catch (cause) {
    throw new UsageError(`no report at ${path}: ${(cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : (cause as Error).message}`, { cause });
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' && file !== path ? `no report.json in ${path} (is it a run folder?)` : `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new UsageError(`${file} is not JSON (${(cause as Error).message}): is it a natmatrix report.json?`, { cause });
  }
  const r = reportSchema.safeParse(raw);
  if (!r.success) throw new UsageError(`${file} is not a natmatrix report: ${firstFew(issueLines(r.error.issues))}`);
  const bad = inconsistencies(r.data.cells);
  if (bad.length) throw new UsageError(`${file} is not a consistent natmatrix report: ${firstFew(bad)}`);
  return r.data as unknown as Report;
}

// ---------------------------------------------------------------------------------------------
// comparing

type Measure = 'connected' | 'direct';
type CellCounts = Pick<Cell, 'agent' | 'a' | 'b' | 'outcome' | 'tries' | 'successes' | 'errors' | 'paths'>;

const cellKey = (c: Pick<Cell, 'agent' | 'a' | 'b'>): string => `${c.agent}\u0000${c.a}\u0000${c.b}`;
const agentName = (name: string): string => (name ? `agent "${name}"` : 'an unnamed agent');
const who = (c: Pick<Cell, 'agent' | 'a' | 'b'>): string => `${c.agent ? `${c.agent} ` : ''}${c.a} × ${c.b}`;

/** tries that connected directly: by any path but the relay */
const directOf = (c: CellCounts): number => Object.entries(c.paths).reduce((s, [p, n]) => (p === 'relayed' ? s : s + n), 0);

/** A side of a compared cell with its errored tries, which the tests leave out of their samples (in
 * the JSON beside the fields of ComparedCounts). */
export type ComparedSide = ComparedCounts & { errors: number };

/** the tries a side's tests count: those that did not error */
export const counted = (s: ComparedCounts): number => s.tries - ((s as Partial<ComparedSide>).errors ?? 0);

function countsOf(c: CellCounts): ComparedSide {
  return { tries: c.tries, successes: c.successes, direct: directOf(c), errors: c.errors, outcome: c.outcome };
}

/** "1.5e-11", "0.0028", "1": a p-value to two significant digits */
export function pNumber(p: number): string {
  if (p === 0) return '< 1e-300';
  return p < 0.001 ? p.toExponential(1) : String(Number(p.toPrecision(2)));
}

/** "p = 1.5e-11", "p = 0.0028", "p = 1" */
export const formatP = (p: number): string => (p === 0 ? `p ${pNumber(p)}` : `p = ${pNumber(p)}`);

interface Tested {
  measure: Measure;
  k1: number;
  n1: number;
  k2: number;
  n2: number;
  p: number;
  /** -1 fewer of the tries, 1 more, 0 the same rate */
  direction: -1 | 0 | 1;
}

function test(measure: Measure, k1: number, n1: number, k2: number, n2: number): Tested {
  const diff = k2 * n1 - k1 * n2; // k2/n2 − k1/n1, without rounding
  return { measure, k1, n1, k2, n2, p: fisherExact(k1, n1, k2, n2), direction: diff < 0 ? -1 : diff > 0 ? 1 : 0 };
}

const movement = (t: Tested): string => `${t.measure} ${t.k1}/${t.n1} → ${t.k2}/${t.n2}`;

function notComparable(agent: string, a: string, b: string, base: CellCounts | null, next: CellCounts | null, reason: string): CellComparison {
  return { agent, a, b, change: 'not comparable', base: base && countsOf(base), next: next && countsOf(next), test: null, measure: null, pValue: null, reason };
}

/** One cell of both runs: why it cannot be compared, or the tests and the verdict. */
function compareCell(base: CellCounts, next: CellCounts, alpha: number): CellComparison {
  const { agent, a, b } = base;
  if (base.tries === 0 || next.tries === 0) {
    const where = base.tries === 0 && next.tries === 0 ? 'either run' : base.tries === 0 ? 'the base run' : 'the new run';
    return notComparable(agent, a, b, base, next, `no tries in ${where}`);
  }
  for (const [side, c] of [['base', base], ['new', next]] as const) {
    if (c.errors === c.tries) return notComparable(agent, a, b, base, next, `all ${c.tries} tr${c.tries === 1 ? 'y' : 'ies'} errored in the ${side} run: errors say nothing of the stack`);
  }
  // errored tries are faults (a crash, a hang), not evidence of what the stack does: left out
  const n1 = base.tries - base.errors;
  const n2 = next.tries - next.errors;
  const tests = [test('connected', base.successes, n1, next.successes, n2), test('direct', directOf(base), n1, directOf(next), n2)];
  const byP = (x: Tested, y: Tested) => x.p - y.p;
  const drops = tests.filter((t) => t.direction < 0 && t.p < alpha).sort(byP);
  const rises = tests.filter((t) => t.direction > 0 && t.p < alpha).sort(byP);
  const change: CellChange = drops.length ? 'regressed' : rises.length ? 'improved' : 'unchanged';
  const decisive = drops[0] ?? rises[0] ?? [...tests].sort(byP)[0]!;
  const other = tests.find((t) => t !== decisive)!;
  let reason = `${movement(decisive)} (${FISHER}, ${formatP(decisive.p)})`;
  // the other measure only when it says something else (some tries were relayed)
  if (other.k1 !== decisive.k1 || other.k2 !== decisive.k2) reason += `; ${movement(other)} (${formatP(other.p)})`;
  if (base.errors || next.errors) reason += `; errored tries left out: ${base.errors} → ${next.errors}`;
  return { agent, a, b, change, base: countsOf(base), next: countsOf(next), test: FISHER, measure: decisive.measure, pValue: decisive.p, reason };
}

/**
 * Two runs of one scenario, cell by cell (a cell is an agent's pairing: agent, a, b). For each cell of
 * both, Fisher's exact test on two measures, over the tries that did not error: tries that connected
 * (any path), and tries that connected directly (a path other than "relayed"). `regressed`: a measure
 * dropped with p < alpha; `improved`: one rose with p < alpha and none dropped so; else `unchanged`.
 * A cell in one run only, with no tries, or with nothing but errored tries is `not comparable`.
 * Runs of different scenarios are refused (UsageError).
 */
export function compareReports(base: Report, next: Report, opts: { alpha?: number } = {}): Comparison {
  const alpha = opts.alpha ?? DEFAULT_ALPHA;
  if (!(alpha > 0 && alpha < 1)) throw new UsageError(`alpha must be a number between 0 and 1 (exclusive), not ${alpha}`);
  if (base.scenario !== next.scenario) {
    throw new UsageError(`base is scenario ${base.scenario}, new is scenario ${next.scenario}: a baseline from another scenario compares nothing`);
  }
  // reports from before several agents existed carry no agent: one unnamed agent, taken for the other
  // run's agent when that run has only one
  const agentsOf = (r: Report) => new Set(r.cells.map((c) => c.agent ?? ''));
  const onlyAgent = (r: Report): string | undefined => (agentsOf(r).size === 1 ? [...agentsOf(r)][0] : undefined);
  const cellsOf = (r: Report, other: Report): CellCounts[] => {
    const stand = [...agentsOf(r)].join('') === '' ? onlyAgent(other) : undefined;
    return r.cells.map((c) => ({ ...c, agent: c.agent || (stand ?? '') }));
  };
  const baseCells = cellsOf(base, next);
  const nextCells = cellsOf(next, base);
  const nextByKey = new Map(nextCells.map((c) => [cellKey(c), c]));
  const baseKeys = new Set(baseCells.map(cellKey));
  const matched = new Map<string, CellComparison>();
  const onlyBase: CellCounts[] = [];
  for (const c of baseCells) {
    const n = nextByKey.get(cellKey(c));
    if (n) matched.set(cellKey(c), compareCell(c, n, alpha));
    else onlyBase.push(c);
  }
  const onlyNext = nextCells.filter((c) => !baseKeys.has(cellKey(c)));
  // a pairing both runs have, but by different agents (another --agent): not the same stack
  // (only when each run has one such cell for the pairing: with more, which would stand for which?)
  const renamed = new Map<CellCounts, CellCounts>();
  for (const c of onlyBase) {
    const same = (x: CellCounts) => x.a === c.a && x.b === c.b;
    const partners = onlyNext.filter(same);
    if (partners.length === 1 && onlyBase.filter(same).length === 1) renamed.set(c, partners[0]!);
  }
  const paired = new Set(renamed.values());
  const cells: CellComparison[] = [
    ...baseCells.map((c) => {
      const done = matched.get(cellKey(c));
      if (done) return done;
      const partner = renamed.get(c);
      if (partner) return notComparable(c.agent, c.a, c.b, c, partner, `${agentName(c.agent)} in the base run, ${agentName(partner.agent)} in the new run: different agents are different stacks`);
      return notComparable(c.agent, c.a, c.b, c, null, 'only in the base run');
    }),
    ...onlyNext.filter((c) => !paired.has(c)).map((c) => notComparable(c.agent, c.a, c.b, null, c, 'only in the new run')),
  ];
  const tally = (x: CellChange) => cells.filter((c) => c.change === x).length;
  const side = (r: Report) => ({ scenario: r.scenario, runId: r.runId, version: r.version, startedAt: r.startedAt });
  return {
    base: side(base),
    next: side(next),
    alpha,
    cells,
    summary: { unchanged: tally('unchanged'), improved: tally('improved'), regressed: tally('regressed'), notComparable: tally('not comparable') },
  };
}

// ---------------------------------------------------------------------------------------------
// rendering

type Style = Parameters<typeof styleText>[0];

/** regressed first, then improved, then not comparable (unchanged cells are only counted) */
const ORDER: Record<CellChange, number> = { regressed: 0, improved: 1, 'not comparable': 2, unchanged: 3 };
const STYLE: Record<CellChange, Style> = { regressed: 'red', improved: 'green', 'not comparable': 'yellow', unchanged: 'dim' };

const listed = (c: Comparison): CellComparison[] => c.cells.filter((x) => x.change !== 'unchanged').sort((x, y) => ORDER[x.change] - ORDER[y.change]);
const severalAgents = (c: Comparison): boolean => new Set(c.cells.map((x) => x.agent)).size > 1;
const pairing = (x: CellComparison, agents: boolean): string => `${agents && x.agent ? `${x.agent}: ` : ''}${x.a} × ${x.b}`;

/** "2026-11-29 12:28 UTC" from an ISO time (as it is when it is not one) */
const when = (iso: string): string => (/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : iso);

export function summaryText(c: Comparison): string {
  const s = c.summary;
  return `${s.unchanged} unchanged, ${s.improved} improved, ${s.regressed} regressed, ${s.notComparable} not comparable`;
}

/**
 * Unchanged cells that moved by half their tries or more (3/3 → 0/3): with so few tries no change
 * can reach significance, which a gate should say rather than pass in silence.
 */
export function underpowered(c: Comparison): CellComparison[] {
  return c.cells.filter((x) => {
    if (x.change !== 'unchanged' || !x.base || !x.next) return false;
    const n1 = counted(x.base);
    const n2 = counted(x.next);
    return Math.abs(x.next.successes / n2 - x.base.successes / n1) >= 0.5 || Math.abs(x.next.direct / n2 - x.base.direct / n1) >= 0.5;
  });
}

function underpoweredNote(c: Comparison): string | null {
  const weak = underpowered(c);
  if (!weak.length) return null;
  const e = weak[0]!;
  return `note: ${weak.length} cell${weak.length === 1 ? '' : 's'} moved by half the tries or more without reaching p < ${c.alpha} (e.g. ${pairing(e, true)}: ${e.reason}): too few tries to tell a change from luck; run both with more --tries to gate on ${weak.length === 1 ? 'it' : 'them'}`;
}

/** Terminal text: what was compared, one line per regressed, improved or not comparable cell, the tally. */
export function renderComparison(c: Comparison, opts: { color: boolean }): string {
  const paint = (style: Style | null, s: string): string => (opts.color && style ? styleText(style, s, { validateStream: false }) : s);
  const agents = severalAgents(c);
  const out = [
    paint('bold', `natmatrix compare: ${c.base.scenario}`) +
      ` — base run ${c.base.runId} (${when(c.base.startedAt)}) → new run ${c.next.runId} (${when(c.next.startedAt)}) · ${FISHER}, α = ${c.alpha}`,
  ];
  // one line per cell; cells not comparable for one reason, many of them (a run of another agent),
  // share one line
  const rows = listed(c);
  const groups = new Map<string, CellComparison[]>();
  for (const x of rows) if (x.change === 'not comparable') groups.set(x.reason, [...(groups.get(x.reason) ?? []), x]);
  const lines: Array<[CellChange, string, string]> = [];
  for (const x of rows) {
    const group = groups.get(x.reason);
    if (x.change !== 'not comparable' || !group || group.length <= 3) lines.push([x.change, pairing(x, agents), x.reason]);
    else if (group[0] === x) lines.push([x.change, `${group.length} cells`, `${x.reason}: ${group.slice(0, 3).map((y) => pairing(y, agents)).join(', ')}, and ${group.length - 3} more`]);
  }
  const w0 = Math.max(0, ...lines.map(([change]) => change.length));
  const w1 = Math.max(0, ...lines.map(([, what]) => what.length));
  for (const [change, what, reason] of lines) out.push(`  ${paint(STYLE[change], change.padEnd(w0))}  ${what.padEnd(w1)}  ${reason}`);
  const note = underpoweredNote(c);
  if (note) out.push(paint('yellow', note));
  out.push(paint(c.summary.regressed ? 'red' : 'green', `${c.cells.length} cell${c.cells.length === 1 ? '' : 's'}: ${summaryText(c)}`));
  return out.join('\n') + '\n';
}


/** "20/20 connected" on one side of a cell, for the measure that decided */
function sideText(x: CellComparison, side: ComparedCounts | null): string {
  if (!side || !x.measure) return '–';
  const n = counted(side);
  return `${x.measure === 'connected' ? side.successes : side.direct}/${n} ${x.measure}`;
}

/** Markdown for a GitHub job summary: the tally, a narrow table of the regressed and of the improved
 * cells (agent, pairing, base, new, p), the cells that could not be compared. */
export function renderComparisonMarkdown(c: Comparison): string {
  const s = c.summary;
  const out = [
    `### natmatrix compare: ${esc(c.base.scenario)}`,
    '',
    `Base run \`${esc(c.base.runId)}\` → new run \`${esc(c.next.runId)}\` (${FISHER}, α = ${c.alpha}): ` +
      `${s.regressed ? `**${s.regressed} regressed**` : '0 regressed'}, ${s.improved} improved, ${s.unchanged} unchanged, ${s.notComparable} not comparable.`,
    '',
  ];
  for (const change of ['regressed', 'improved'] as const) {
    const rows = c.cells.filter((x) => x.change === change);
    if (!rows.length) continue;
    out.push(`#### ${change === 'regressed' ? 'Regressed' : 'Improved'}`, '', '| agent | pairing | base | new | p |', '|---|---|---|---|---|');
    for (const x of rows) out.push(`| ${esc(x.agent) || '–'} | ${esc(x.a)} × ${esc(x.b)} | ${sideText(x, x.base)} | ${sideText(x, x.next)} | ${x.pValue === null ? '–' : pNumber(x.pValue)} |`);
    out.push('');
  }
  const nc = c.cells.filter((x) => x.change === 'not comparable');
  if (nc.length) {
    out.push('#### Not comparable', '');
    for (const x of nc.slice(0, 20)) out.push(`- ${esc(pairing(x, true))}: ${esc(x.reason)}`);
    if (nc.length > 20) out.push(`- and ${nc.length - 20} more`);
    out.push('');
  }
  const note = underpoweredNote(c);
  if (note) out.push(`> ${esc(note.replace(/^note: /, ''))}`, '');
  return out.join('\n');
}

/** --alpha: a plain decimal number strictly between 0 and 1 */
export function parseAlpha(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const p = /^\d*\.?\d+(e-?\d+)?$/i.test(value) ? Number(value) : NaN;
  if (!(p > 0 && p < 1)) throw new UsageError(`--alpha must be a number between 0 and 1 (e.g. 0.05, 0.01), not "${value}"`);
  return p;
}
