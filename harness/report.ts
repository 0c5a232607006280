// Report renderers: terminal matrix, GitHub-flavoured markdown (CI step summary), JSON.
// Pure functions of a `Report`; no I/O.

import { join } from 'node:path';
import { styleText } from 'node:util';
import { median } from './judge.ts';
import type { Cell, Report } from './types.ts';

type Style = Parameters<typeof styleText>[0];

/**
 * The summary of a run. With a strategy (the agent's fallback steps in order), a cell won by step k
 * was failed by every step before it: step k "rescued" it. `of` is how many cells reached step k, i.e.
 * were not won by an earlier step (errored cells left out): seed 003 reports TCP rescuing 10–20 % of
 * UDP's failures.
 */
export function summarize(cells: Cell[], strategy: string[] | null = null): Report['summary'] {
  const paths: Record<string, number> = {};
  for (const c of cells) if (c.path !== null) paths[c.path] = (paths[c.path] ?? 0) + 1;
  const judged = cells.filter((c) => c.outcome !== 'error');
  const rescued = (strategy ?? []).slice(1).map((path, i) => {
    const earlier = new Set(strategy!.slice(0, i + 1));
    const reached = judged.filter((c) => c.path === null || !earlier.has(c.path));
    return { path, cells: reached.filter((c) => c.path === path).length, of: reached.length };
  });
  return {
    cells: cells.length,
    matched: cells.filter((c) => c.match).length,
    mismatched: cells.filter((c) => !c.match).length,
    errored: cells.filter((c) => c.outcome === 'error').length,
    flaky: cells.filter((c) => c.flaky).length,
    paths,
    rescued,
  };
}

/** One letter per path in matrices: the path that won a cell at a glance. */
const PATH_LETTERS: Record<string, string> = { 'direct-udp': 'U', 'direct-tcp': 'T', relayed: 'R', matconnect: 'M', 'plain-udp': 'P' };

export function pathLetter(path: string | null): string {
  if (path === null) return '';
  return PATH_LETTERS[path] ?? '*';
}

/** "U direct-udp · T direct-tcp": the legend for the letters a report uses. */
function pathLegend(report: Report): string {
  const order = (p: string) => (report.strategy?.includes(p) ? report.strategy.indexOf(p) : Infinity);
  const used = [...new Set(report.cells.flatMap((c) => (c.path === null ? [] : [c.path])))].sort((x, y) => order(x) - order(y) || x.localeCompare(y));
  return used.map((p) => `${pathLetter(p)} ${p}`).join(' · ');
}

/** Only when something is worth saying: packets one lane sent towards another (dropped), or lanes the
 * kernel could not isolate. */
function isolationLine(report: Report): string | null {
  const { enforced, crossLaneDrops } = report.isolation;
  if (!enforced) return 'lanes not isolated: this kernel has no nft bridge family, so nothing stops traffic between pairings (peers are still checked)';
  const lanes = Object.keys(crossLaneDrops);
  if (!lanes.length) return null;
  const n = Object.values(crossLaneDrops).reduce((x, y) => x + y, 0);
  return `lane isolation dropped ${n} packet${n === 1 ? '' : 's'} sent from one pairing's lane to another's (lane${lanes.length === 1 ? '' : 's'} ${lanes.join(', ')}): an agent aimed outside its pairing`;
}

/** "direct-tcp rescued 2 of 6 cells (33 %) · relayed rescued 4 of 4 cells (100 %)" */
function rescueLine(report: Report): string | null {
  const r = report.summary.rescued;
  if (!r.length) return null;
  return r.map((x) => `${x.path} rescued ${x.cells} of ${x.of} cell${x.of === 1 ? '' : 's'}${x.of ? ` (${Math.round((100 * x.cells) / x.of)} %)` : ''}`).join(' · ');
}

export function cellAt(report: Report, a: string, b: string): Cell | undefined {
  return report.cells.find((c) => c.a === a && c.b === b);
}

export function renderJson(report: Report): string {
  return JSON.stringify(report, null, 2) + '\n';
}

// ---------------------------------------------------------------------------------------------
// shared helpers

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
const ms1 = (ms: number | null): string => (ms === null ? '–' : ms.toFixed(1));
const count = (c: Cell): string => `${c.successes}/${c.tries}`;
const pct = (x: number): string => `${Math.round(x * 100)} %`;
/** "100 % (44–100 %)": the success rate and its 95 % Wilson interval */
const rate = (c: Cell): string => `${pct(c.successRate.rate)} (${Math.round(c.successRate.low * 100)}–${pct(c.successRate.high)})`;

export function overallTimeToDirect(cells: Cell[]): number | null {
  return median(cells.flatMap((c) => (c.timeToDirectMs.median === null ? [] : [c.timeToDirectMs.median])));
}

/** Cells whose evidence is worth a look: anything but a clean, as-expected direct result. */
const noteworthy = (c: Cell): boolean => !c.match || c.flaky || c.outcome !== 'direct';

const mismatches = (report: Report): Cell[] =>
  report.rows.flatMap((a) => report.cols.flatMap((b) => cellAt(report, a, b) ?? [])).filter((c) => !c.match);

// ---------------------------------------------------------------------------------------------
// terminal

/** Display width; every glyph we emit (✓ ✗ ~ –) is one column, so code points suffice. */
const width = (s: string): number => [...s].length;
const pad = (s: string, w: number): string => s + ' '.repeat(Math.max(0, w - width(s)));

function cellText(c: Cell | undefined, letters: boolean): string {
  if (!c) return '–';
  const mark = (c.match ? '✓' : '✗') + (c.flaky ? '~' : '');
  if (c.outcome === 'error') return `ERR ${count(c)} ${mark}`;
  const n = letters && c.path !== null ? `${count(c)} ${pathLetter(c.path)}` : count(c);
  return c.match ? `${n} ${mark}` : `${n} ${mark} want ${c.expected}`;
}

function cellStyle(c: Cell | undefined): Style | null {
  if (!c) return 'dim';
  if (c.outcome === 'error') return 'yellow';
  if (!c.match) return 'red';
  if (c.flaky) return 'yellow';
  return c.outcome === 'direct' ? 'green' : c.outcome === 'relayed' ? 'cyan' : 'dim';
}

/** Letters are shown once a report has more than plain direct-udp to tell apart. */
const showLetters = (report: Report): boolean => report.strategy !== null || report.cells.some((c) => c.path !== null && c.path !== 'direct-udp');

export function renderTerminal(report: Report, opts: { color: boolean }): string {
  const paint = (style: Style | null, s: string): string =>
    opts.color && style ? styleText(style, s, { validateStream: false }) : s;
  const { summary } = report;
  const out: string[] = [];

  out.push(
    paint('bold', `natmatrix: ${report.scenario}`) +
      ` — ${report.description} · ${summary.cells} pairings × ${report.options.tries} tries` +
      ` · ${seconds(report.durationMs)} · ${report.outDir}`,
    '',
  );

  // matrix: first column = side A names, then one column per side B name
  const corner = 'A \\ B';
  const letters = showLetters(report);
  const grid = report.rows.map((a) => report.cols.map((b) => cellAt(report, a, b)));
  const w0 = Math.max(width(corner), ...report.rows.map(width));
  const ws = report.cols.map((b, j) => Math.max(width(b), ...grid.map((r) => width(cellText(r[j], letters)))));
  const gap = '  ';
  out.push([pad(corner, w0), ...report.cols.map((b, j) => paint('bold', pad(b, ws[j]!)))].join(gap));
  out.push(['-'.repeat(w0), ...ws.map((w) => '-'.repeat(w))].join(gap));
  grid.forEach((row, i) => {
    const cells = row.map((c, j) => paint(cellStyle(c), pad(cellText(c, letters), ws[j]!)));
    out.push([paint('bold', pad(report.rows[i]!, w0)), ...cells].join(gap));
  });

  out.push(
    '',
    paint('dim', 'x/y = connected tries / tries   ✓ as expected   ✗ not as expected   ~ flaky   ERR error   want = expected'),
  );
  if (letters && pathLegend(report)) out.push(paint('dim', `path that won: ${pathLegend(report)}`));
  const rescue = rescueLine(report);
  if (rescue) out.push(`fallback: ${rescue}`);

  const extras = [
    summary.errored ? `${summary.errored} errored` : '',
    summary.flaky ? `${summary.flaky} flaky` : '',
  ].filter(Boolean);
  const line = `${summary.matched}/${summary.cells} cells as expected` + (extras.length ? ` (${extras.join(', ')})` : '');
  out.push(paint(summary.mismatched ? 'red' : 'green', line));

  for (const c of mismatches(report)) {
    const got = c.path !== null && c.path !== c.outcome ? `${c.outcome} via ${c.path}` : c.outcome;
    out.push(paint('red', `✗ ${c.a} × ${c.b}: expected ${c.expected}, got ${got} (${count(c)})`));
    if (c.reasons[0]) out.push(`    ${c.reasons[0]}`);
    out.push(`    evidence: ${join(report.outDir, c.evidence)}`);
  }

  const iso = isolationLine(report);
  if (iso) out.push(paint('yellow', iso));
  const ttd = overallTimeToDirect(report.cells);
  out.push(`median time-to-direct: ${ttd === null ? 'n/a' : `${ttd.toFixed(1)} ms`}`);
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// markdown

/** Make free text safe inside a GFM table cell. */
const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;
const table = (head: string[], body: string[][]): string[] => [
  row(head),
  row(head.map(() => '---')),
  ...body.map(row),
];

/** "direct-tcp", or the outcome when no path won */
const what = (c: Cell): string => c.path ?? c.outcome;

function mdCell(c: Cell | undefined): string {
  if (!c) return '–';
  const flaky = c.flaky ? ' (flaky)' : '';
  if (c.outcome === 'error') return `⚠️ error ${count(c)}${flaky}`;
  if (!c.match) return `❌ ${count(c)} ${what(c)} (want ${c.expected})${flaky}`;
  const icon = c.outcome === 'relayed' ? '🔁' : '✅';
  return `${icon} ${count(c)} ${what(c)}${flaky}`;
}

export function renderMarkdown(report: Report): string {
  const { summary, host, options } = report;
  const extras = [
    summary.errored ? `${summary.errored} errored` : '',
    summary.flaky ? `${summary.flaky} flaky` : '',
  ].filter(Boolean);
  const verdict =
    (summary.mismatched === 0
      ? `✅ all ${summary.cells} pairings as expected`
      : `❌ ${summary.mismatched} of ${summary.cells} pairings differ from expectation`) +
    (extras.length ? ` (${extras.join(', ')})` : '');

  const matrix = table(
    ['A \\ B', ...report.cols.map(esc)],
    report.rows.map((a) => [`**${esc(a)}**`, ...report.cols.map((b) => mdCell(cellAt(report, a, b)))]),
  );

  const cells = report.rows.flatMap((a) => report.cols.flatMap((b) => cellAt(report, a, b) ?? []));
  const details = table(
    ['A', 'B', 'expected', 'outcome', 'path', 'connected/tries', 'success rate (95 % CI)', 'flaky', 'time-to-direct median / max (ms)', 'match', 'reasons', 'evidence'],
    cells.map((c) => [
      esc(c.a),
      esc(c.b),
      c.expected,
      c.outcome,
      Object.keys(c.paths).length > 1 ? Object.entries(c.paths).map(([p, n]) => `${p} ×${n}`).join(', ') : (c.path ?? '–'),
      count(c),
      rate(c),
      c.flaky ? 'yes' : 'no',
      c.timeToDirectMs.median === null && c.timeToDirectMs.max === null
        ? '–'
        : `${ms1(c.timeToDirectMs.median)} / ${ms1(c.timeToDirectMs.max)}`,
      c.match ? '✅' : '❌',
      c.reasons.length ? esc(c.reasons[0]!) + (c.reasons.length > 1 ? ` (+${c.reasons.length - 1} more in report.json)` : '') : '–',
      noteworthy(c) ? `[${esc(c.evidence)}](${encodeURI(c.evidence)})` : '–',
    ]),
  );

  const hostTable = table(
    ['kernel', 'nft', 'iproute2', 'conntrack', 'node', 'cpus'],
    [[host.kernel, host.nft, host.iproute2, host.conntrack, host.node, String(host.cpus)].map(esc)],
  );

  const rescue = rescueLine(report);
  return [
    `## natmatrix: ${report.scenario}`,
    '',
    report.description,
    '',
    `**${verdict}**`,
    '',
    ...matrix,
    '',
    ...(report.strategy ? [`Strategy: ${report.strategy.join(' → ')}. Fallback: ${rescue}.`, ''] : []),
    '### Cells',
    '',
    ...details,
    '',
    '### Run',
    '',
    `- run id: \`${report.runId}\``,
    `- started: ${report.startedAt}`,
    `- duration: ${seconds(report.durationMs)}`,
    `- options: tries ${options.tries}, timeout ${options.timeoutMs} ms, jobs ${options.jobs}`,
    ...(isolationLine(report) ? [`- ${isolationLine(report)}`] : []),
    `- ${report.tool} ${report.version}`,
    '',
    '### Host',
    '',
    ...hostTable,
    '',
  ].join('\n');
}

/** The live progress line of a run (TTY only): tries done, elapsed, and a linear ETA. */
export function progressLine(done: number, total: number, elapsedMs: number): string {
  const eta = done > 0 ? (elapsedMs / done) * (total - done) : null;
  return `  ${done}/${total} tries · ${(elapsedMs / 1000).toFixed(1)} s elapsed · ETA ${eta === null ? '–' : `${(eta / 1000).toFixed(1)} s`}`;
}
