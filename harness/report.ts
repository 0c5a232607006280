// Report renderers: terminal matrix, GitHub-flavoured markdown (CI step summary), JSON.
// Pure functions of a `Report`; no I/O. A run of several agents gets one matrix per agent, then the
// pairings where they differ and each agent's time-to-direct distribution.

import { join } from 'node:path';
import { styleText } from 'node:util';
import { expectationText } from './expect.ts';
import { median } from './judge.ts';
import type { AgentDifference, AgentReport, Cell, Report, Summary, TimeDistribution } from './types.ts';

type Style = Parameters<typeof styleText>[0];

/**
 * The summary of a run. With a strategy (the agent's fallback steps in order), a cell won by step k
 * was failed by every step before it: step k "rescued" it. `of` is how many cells reached step k, i.e.
 * were not won by an earlier step (errored cells left out): seed 003 reports TCP rescuing 10–20 % of
 * UDP's failures.
 */
export function summarize(cells: Cell[], strategy: string[] | null = null): Summary {
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

/** Time-to-direct over every connected try of `cells`: count, median, 90th percentile, largest. */
export function timeDistribution(cells: Cell[]): TimeDistribution {
  const xs = cells.flatMap((c) => c.timeToDirectMs.samples).sort((x, y) => x - y);
  const r1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  const p90 = xs.length ? xs[Math.min(xs.length - 1, Math.ceil(0.9 * xs.length) - 1)]! : null;
  return { n: xs.length, median: r1(median(xs)), p90: r1(p90), max: r1(xs.length ? xs[xs.length - 1]! : null) };
}

/** With several agents: the pairings whose outcome (or winning path) differs between agents. */
export function compareAgents(cells: Cell[]): AgentDifference[] {
  const agents = [...new Set(cells.map((c) => c.agent))];
  if (agents.length < 2) return [];
  const pairs = [...new Map(cells.map((c) => [`${c.a}\u0000${c.b}`, [c.a, c.b] as const])).values()];
  const out: AgentDifference[] = [];
  for (const [a, b] of pairs) {
    const own = agents.flatMap((n) => cells.filter((c) => c.agent === n && c.a === a && c.b === b));
    if (new Set(own.map((c) => `${c.outcome}:${c.path ?? ''}`)).size < 2) continue;
    out.push({ a, b, byAgent: Object.fromEntries(own.map((c) => [c.agent, { outcome: c.outcome, path: c.path, successes: c.successes, tries: c.tries }])) });
  }
  return out;
}

/** One letter per path in matrices: the path that won a cell at a glance. */
const PATH_LETTERS: Record<string, string> = { 'direct-udp': 'U', 'direct-tcp': 'T', relayed: 'R', matconnect: 'M', 'plain-udp': 'P' };

export function pathLetter(path: string | null): string {
  if (path === null) return '';
  return PATH_LETTERS[path] ?? '*';
}

/** "U direct-udp · T direct-tcp": the legend for the letters a report uses. */
function pathLegend(report: Report): string {
  const strategy = report.strategy;
  const order = (p: string) => (strategy?.includes(p) ? strategy.indexOf(p) : Infinity);
  const used = [...new Set(report.cells.flatMap((c) => (c.path === null ? [] : [c.path])))].sort((x, y) => order(x) - order(y) || x.localeCompare(y));
  return used.map((p) => `${pathLetter(p)} ${p}`).join(' · ');
}

/** "direct-tcp rescued 2 of 6 cells (33 %) · relayed rescued 4 of 4 cells (100 %)" */
function rescueLine(summary: Summary): string | null {
  const r = summary.rescued;
  if (!r.length) return null;
  return r.map((x) => `${x.path} rescued ${x.cells} of ${x.of} cell${x.of === 1 ? '' : 's'}${x.of ? ` (${Math.round((100 * x.cells) / x.of)} %)` : ''}`).join(' · ');
}

/** The cell of (a, b) for `agent` (the first agent when not given). */
export function cellAt(report: Report, a: string, b: string, agent?: string): Cell | undefined {
  const name = agent ?? report.agents[0]?.name;
  return report.cells.find((c) => c.a === a && c.b === b && (name === undefined || c.agent === name));
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
const noteworthy = (c: Cell): boolean => !c.match || c.flaky || c.outcome !== 'direct' || c.notes.length > 0;

/** The agents to render, in order; a report from before agents existed counts as one unnamed agent. */
const agentsOf = (report: Report): Array<AgentReport | null> => (report.agents.length ? report.agents : [null]);

const cellsOf = (report: Report, agent: AgentReport | null): Cell[] =>
  report.rows.flatMap((a) => report.cols.flatMap((b) => cellAt(report, a, b, agent?.name) ?? []));

const several = (report: Report) => report.agents.length > 1;

/** "ours: median 12.0 ms, p90 30.1 ms, max 52.3 ms over 72 connected tries" */
function distributionText(d: TimeDistribution): string {
  if (d.n === 0) return 'no connected try';
  return `median ${ms1(d.median)} ms, p90 ${ms1(d.p90)} ms, max ${ms1(d.max)} ms over ${d.n} connected tr${d.n === 1 ? 'y' : 'ies'}`;
}

/** What makes an agent's verdicts different from the default, in a few words ("b decides, budget 8000 ms"). */
export function agentTraits(x: AgentReport): string {
  return [
    x.verdict === 'both' ? '' : x.verdict === 'either' ? 'either side decides' : `${x.verdict} decides`,
    x.timing.mode === 'budget' ? `budget ${x.timing.budgetMs} ms` : '',
    x.rendezvousScope && x.rendezvousScope !== 'run' ? `rendezvous per ${x.rendezvousScope}` : '',
    x.services.length ? `services ${x.services.join(', ')}` : '',
    x.peerCheck ? '' : 'peers unchecked',
    x.privileged === true ? 'privileged: ran as root, unconfined' : '',
  ].filter(Boolean).join(', ');
}

// ---------------------------------------------------------------------------------------------
// terminal

/** Display width; every glyph we emit (✓ ✗ ~ – ≥) is one column, so code points suffice. */
const width = (s: string): number => [...s].length;
const pad = (s: string, w: number): string => s + ' '.repeat(Math.max(0, w - width(s)));

function cellText(c: Cell | undefined, letters: boolean): string {
  if (!c) return '–';
  const mark = c.expected === null && c.outcome !== 'error' ? (c.flaky ? '~' : '') : (c.match ? '✓' : '✗') + (c.flaky ? '~' : '');
  if (c.outcome === 'error') return `ERR ${count(c)} ${mark}`;
  const n = letters && c.path !== null ? `${count(c)} ${pathLetter(c.path)}` : count(c);
  const shown = mark ? `${n} ${mark}` : n;
  return c.match ? shown : `${shown} want ${expectationText(c.expected)}`;
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

function matrixLines(report: Report, agent: AgentReport | null, paint: (style: Style | null, s: string) => string): string[] {
  const corner = 'A \\ B';
  const letters = showLetters(report);
  const grid = report.rows.map((a) => report.cols.map((b) => cellAt(report, a, b, agent?.name)));
  const w0 = Math.max(width(corner), ...report.rows.map(width));
  const ws = report.cols.map((b, j) => Math.max(width(b), ...grid.map((r) => width(cellText(r[j], letters)))));
  const gap = '  ';
  const out = [[pad(corner, w0), ...report.cols.map((b, j) => paint('bold', pad(b, ws[j]!)))].join(gap), ['-'.repeat(w0), ...ws.map((w) => '-'.repeat(w))].join(gap)];
  grid.forEach((row, i) => {
    const cells = row.map((c, j) => paint(cellStyle(c), pad(cellText(c, letters), ws[j]!)));
    out.push([paint('bold', pad(report.rows[i]!, w0)), ...cells].join(gap));
  });
  return out;
}

/** "✗ symmetric × full-cone: expected failed, got direct (2/2)" plus its first reason and evidence */
function mismatchLines(report: Report, cells: Cell[], paint: (style: Style | null, s: string) => string): string[] {
  const out: string[] = [];
  for (const c of cells.filter((x) => !x.match)) {
    const got = c.path !== null && c.path !== c.outcome ? `${c.outcome} via ${c.path}` : c.outcome;
    const rateNote = c.rate ? `, ${c.rate.successes}/${c.tries} (${Math.round(c.rate.low * 100)}–${pct(c.rate.high)})` : ` (${count(c)})`;
    const who = several(report) ? `${c.agent}: ` : '';
    out.push(paint('red', `✗ ${who}${c.a} × ${c.b}: expected ${expectationText(c.expected)}, got ${got}${rateNote}`));
    if (c.reasons[0]) out.push(`    ${c.reasons[0]}`);
    out.push(`    evidence: ${join(report.outDir, c.evidence)}`);
  }
  return out;
}

function summaryLine(s: Summary, observe: boolean): string {
  const extras = [s.errored ? `${s.errored} errored` : '', s.flaky ? `${s.flaky} flaky` : ''].filter(Boolean);
  const head = observe ? `${s.cells} cells observed (no expectations)` : `${s.matched}/${s.cells} cells as expected`;
  return head + (extras.length ? ` (${extras.join(', ')})` : '');
}

/** An adaptive run's rounds: the target, how many tries the cells took and why they stopped (else null). */
export function adaptiveText(report: Report): string | null {
  const a = report.options.adaptive;
  if (!a) return null;
  const tries = report.cells.map((c) => c.tries).sort((x, y) => x - y);
  const range = tries.length ? (tries[0] === tries.at(-1) ? `${tries[0]}` : `${tries[0]}–${tries.at(-1)}`) : '0';
  const why = [
    a.stopped.interval ? `${a.stopped.interval} narrow enough` : '',
    a.stopped.settled ? `${a.stopped.settled} settled against their expectation` : '',
    a.stopped.error ? `${a.stopped.error} errored` : '',
    a.stopped.cap ? `${a.stopped.cap} at the cap, still wider` : '',
  ].filter(Boolean);
  return `adaptive (95 % interval ≤ ${a.ciWidth}, at most ${a.maxTries} tries a cell): ${a.rounds} round${a.rounds === 1 ? '' : 's'}, ${tries.reduce((n, x) => n + x, 0)} tries, ${range} per cell (median ${median(tries)}); cells: ${why.join(', ')}`;
}

/** What part of a run the report holds: one shard's tries, or every shard's pooled (else null). */
export function shardText(report: Report): string | null {
  if (report.shard) {
    const { index, count, planned } = report.shard;
    return `shard ${index}/${count}: ${report.cells.reduce((n, c) => n + c.tries, 0)} of the run's ${planned} tries`;
  }
  if (report.merged) return `merged from ${report.merged.shards.length} shards (runs ${report.merged.shards.map((x) => x.runId).join(', ')})`;
  return null;
}

export function renderTerminal(report: Report, opts: { color: boolean }): string {
  const paint = (style: Style | null, s: string): string =>
    opts.color && style ? styleText(style, s, { validateStream: false }) : s;
  const { summary } = report;
  const observe = report.options.observe === true;
  const out: string[] = [];
  const pairings = report.rows.length * report.cols.length;
  const part = shardText(report);
  const rounds = adaptiveText(report);

  out.push(
    paint('bold', `natmatrix: ${report.scenario}`) +
      ` — ${report.description} · ${pairings} pairings × ${report.options.adaptive ? `${report.options.tries}+` : report.options.tries} tries` +
      (several(report) ? ` × ${report.agents.length} agents` : '') +
      (part ? ` · ${part}` : '') +
      ` · ${seconds(report.durationMs)} · ${report.outDir}`,
    '',
  );

  for (const agent of agentsOf(report)) {
    if (several(report) && agent) {
      const traits = agentTraits(agent);
      out.push(paint('bold', `agent ${agent.name}`) + ` (${agent.source}${traits ? `; ${traits}` : ''})`);
    }
    out.push(...matrixLines(report, agent, paint));
    if (several(report) && agent) out.push(paint(agent.summary.mismatched ? 'red' : 'green', summaryLine(agent.summary, observe)), '');
  }

  if (!several(report)) out.push('');
  out.push(
    paint('dim', `x/y = connected tries / tries   ${observe ? '' : '✓ as expected   ✗ not as expected   '}~ flaky   ERR error${observe ? '' : '   want = expected'}`),
  );
  if (showLetters(report) && pathLegend(report)) out.push(paint('dim', `path that won: ${pathLegend(report)}`));
  for (const agent of agentsOf(report)) {
    const rescue = rescueLine(agent?.summary ?? summary);
    if (rescue) out.push(`fallback${several(report) && agent ? ` (${agent.name})` : ''}: ${rescue}`);
  }
  if (!several(report) && report.agents[0] && agentTraits(report.agents[0])) out.push(paint('dim', `agent ${report.agents[0].name}: ${agentTraits(report.agents[0])}`));

  out.push(paint(summary.mismatched ? 'red' : 'green', summaryLine(summary, observe)));
  if (rounds) out.push(rounds);
  out.push(...mismatchLines(report, report.cells.filter((c) => !c.match), paint));

  if (several(report)) {
    const diff = report.comparison;
    out.push(diff.length ? `agents differ on ${diff.length} of ${pairings} pairing${pairings === 1 ? '' : 's'}:` : `agents agree on all ${pairings} pairings`);
    for (const d of diff) {
      const each = Object.entries(d.byAgent).map(([n, x]) => `${n} ${x.successes}/${x.tries}${x.path ? ` ${x.path}` : ` ${x.outcome}`}`);
      out.push(`    ${d.a} × ${d.b}: ${each.join(' · ')}`);
    }
    out.push('time-to-direct:');
    for (const agent of report.agents) out.push(`    ${agent.name}: ${distributionText(agent.timeToDirect)}`);
  } else {
    const ttd = overallTimeToDirect(report.cells);
    out.push(`median time-to-direct: ${ttd === null ? 'n/a' : `${ttd.toFixed(1)} ms`}`);
  }
  const notes = new Set(report.cells.flatMap((c) => c.notes)).size;
  if (notes) out.push(paint('yellow', `notes on ${report.cells.filter((c) => c.notes.length).length} cells (e.g. processes an agent left running): see report.md`));
  const iso = isolationLine(report);
  if (iso) out.push(paint('yellow', iso));
  return out.join('\n') + '\n';
}

/** Only when something is worth saying: packets one lane sent towards another (dropped), or lanes the
 * kernel could not isolate. */
export function isolationLine(report: Report): string | null {
  const { enforced, crossLaneDrops, lowTtlDrops = 0, internetHops = 0 } = report.isolation;
  if (!enforced) return 'lanes not isolated: this kernel has no nft bridge family, so nothing stops traffic between pairings (peers are still checked)';
  const said: string[] = [];
  const lanes = Object.keys(crossLaneDrops);
  if (lanes.length) {
    const n = Object.values(crossLaneDrops).reduce((x, y) => x + y, 0);
    said.push(`lane isolation dropped ${n} packet${n === 1 ? '' : 's'} sent from one pairing's lane to another's (lane${lanes.length === 1 ? '' : 's'} ${lanes.join(', ')}): an agent aimed outside its pairing`);
  }
  if (lowTtlDrops > 0) said.push(`the internet's depth (${internetHops} routers) dropped ${lowTtlDrops} packet${lowTtlDrops === 1 ? '' : 's'} sent with a TTL too low to cross it`);
  return said.length ? said.join('; ') : null;
}

// ---------------------------------------------------------------------------------------------
// markdown

/** Make free text safe inside a GFM table cell (and in markdown text generally). */
export const esc = (s: string): string =>
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
  if (!c.match) return `❌ ${count(c)} ${what(c)} (want ${esc(expectationText(c.expected))})${flaky}`;
  const icon = c.expected === null ? (c.outcome === 'relayed' ? '🔁' : c.outcome === 'direct' ? '🟢' : '⚪') : c.outcome === 'relayed' ? '🔁' : '✅';
  return `${icon} ${count(c)} ${what(c)}${flaky}`;
}

function mdVerdict(s: Summary, observe: boolean): string {
  const extras = [s.errored ? `${s.errored} errored` : '', s.flaky ? `${s.flaky} flaky` : ''].filter(Boolean);
  const head = observe
    ? `${s.errored ? '⚠️' : '👀'} ${s.cells} pairings observed (no expectations)`
    : s.mismatched === 0
      ? `✅ all ${s.cells} pairings as expected`
      : `❌ ${s.mismatched} of ${s.cells} pairings differ from expectation`;
  return head + (extras.length ? ` (${extras.join(', ')})` : '');
}

function mdMatrix(report: Report, agent: AgentReport | null): string[] {
  return table(
    ['A \\ B', ...report.cols.map(esc)],
    report.rows.map((a) => [`**${esc(a)}**`, ...report.cols.map((b) => mdCell(cellAt(report, a, b, agent?.name)))]),
  );
}

/** Where a job summary points for evidence: the uploaded run folder. */
export interface SummaryLinks {
  /** the artifact's name (the run folder, uploaded) */
  artifact?: string;
  /** a page listing the artifact (GitHub: the workflow run's page) */
  url?: string;
}

function summaryCell(c: Cell | undefined): string {
  if (!c) return '–';
  const letter = c.path ? ` ${pathLetter(c.path)}` : '';
  if (c.outcome === 'error') return `⚠️ ${count(c)}`;
  // observing (no expectation): what happened, not whether it was expected
  if (c.expected === null) return `${c.outcome === 'relayed' ? '🔁' : c.outcome === 'direct' ? '🟢' : '⚪'} ${count(c)}${letter}`;
  if (!c.match) return `❌ ${count(c)}${letter}`;
  return `${c.flaky ? '〰️' : '✅'} ${count(c)}${letter}`;
}

/**
 * A job summary (GitHub's step summary, GitLab's report): narrow enough for the page — the verdict, a
 * matrix per agent with one short mark per cell, and a line per cell that did not match or errored,
 * whose evidence is named as a folder of the uploaded run folder (relative links lead nowhere there).
 */
export function renderSummary(report: Report, links: SummaryLinks = {}): string {
  const observe = report.options.observe === true;
  const part = shardText(report);
  const rounds = adaptiveText(report);
  const out = [`## natmatrix: ${esc(report.scenario)}`, '', `**${mdVerdict(report.summary, observe)}** · ${seconds(report.durationMs)}${part ? ` · ${esc(part)}` : ''}`, '', ...(rounds ? [esc(rounds), ''] : [])];
  for (const agent of agentsOf(report)) {
    if (several(report) && agent) out.push(`**${esc(agent.name)}**: ${mdVerdict(agent.summary, observe)}`, '');
    out.push(...table(['A \\ B', ...report.cols.map(esc)], report.rows.map((a) => [`**${esc(a)}**`, ...report.cols.map((b) => summaryCell(cellAt(report, a, b, agent?.name)))])), '');
  }
  const legend = pathLegend(report);
  const marks = observe ? '🟢 direct · 🔁 relayed · ⚪ failed · ⚠️ error' : '✅ as expected · ❌ not as expected · ⚠️ error · 〰️ flaky';
  out.push(`${marks} · x/y connected/tries${legend ? ` · ${legend}` : ''}`, '');
  const where = links.artifact ? `in the artifact \`${esc(links.artifact)}\`` : 'in the run folder';
  const bad = report.cells.filter((c) => c.outcome === 'error' || !c.match);
  if (bad.length) {
    out.push(`### ${bad.length} cell${bad.length === 1 ? '' : 's'} to look at`, '');
    for (const c of bad.slice(0, 30)) {
      const agent = several(report) ? ` (${esc(c.agent)})` : '';
      const got = c.outcome === 'error' ? 'error' : `${what(c)} ${count(c)}`;
      out.push(`- **${esc(c.a)} × ${esc(c.b)}**${agent}: expected ${esc(expectationText(c.expected))}, got ${got}${c.reasons[0] ? ` — ${esc(c.reasons[0].slice(0, 200))}` : ''}; evidence \`${esc(c.evidence)}/\``);
    }
    if (bad.length > 30) out.push(`- … and ${bad.length - 30} more: report.md ${where}`);
    out.push('');
  }
  out.push(`Evidence, every report format (report.html, report.junit.xml, report.md, report.json) and the agents' logs are ${where}${links.url ? `: [${links.url}](${links.url})` : ''}.`, '');
  return out.join('\n');
}

export function renderMarkdown(report: Report): string {
  const { summary, host, options } = report;
  const part = shardText(report);
  const rounds = adaptiveText(report);
  const observe = options.observe === true;
  const pairings = report.rows.length * report.cols.length;
  const matrices: string[] = [];
  for (const agent of agentsOf(report)) {
    if (several(report) && agent) {
      const traits = agentTraits(agent);
      matrices.push(`### Agent \`${esc(agent.name)}\``, '', `${agent.description ? `${esc(agent.description)} · ` : ''}\`${esc(agent.source)}\`${traits ? ` · ${esc(traits)}` : ''} · **${mdVerdict(agent.summary, observe)}**`, '');
    }
    matrices.push(...mdMatrix(report, agent), '');
    const rescue = rescueLine(agent?.summary ?? summary);
    const strategy = agent?.strategy ?? report.strategy;
    if (strategy && rescue) matrices.push(`Strategy: ${strategy.join(' → ')}. Fallback: ${rescue}.`, '');
  }

  const comparison = several(report)
    ? [
        '### Where the agents differ',
        '',
        ...(report.comparison.length
          ? table(['A', 'B', ...report.agents.map((x) => esc(x.name))], report.comparison.map((d) => [esc(d.a), esc(d.b), ...report.agents.map((x) => {
              const c = d.byAgent[x.name];
              return c ? `${c.successes}/${c.tries} ${c.path ?? c.outcome}` : '–';
            })]))
          : [`The agents agree on all ${pairings} pairings.`]),
        '',
        '### Time-to-direct',
        '',
        ...table(['agent', 'connected tries', 'median (ms)', 'p90 (ms)', 'max (ms)'], report.agents.map((x) => [esc(x.name), String(x.timeToDirect.n), ms1(x.timeToDirect.median), ms1(x.timeToDirect.p90), ms1(x.timeToDirect.max)])),
        '',
      ]
    : [];

  const cells = agentsOf(report).flatMap((agent) => cellsOf(report, agent));
  const details = table(
    [...(several(report) ? ['agent'] : []), 'A', 'B', 'expected', 'outcome', 'path', 'connected/tries', 'success rate (95 % CI)', 'flaky', 'time-to-direct median / max (ms)', 'match', 'reasons', 'evidence'],
    cells.map((c) => [
      ...(several(report) ? [esc(c.agent)] : []),
      esc(c.a),
      esc(c.b),
      esc(expectationText(c.expected)),
      c.outcome,
      Object.keys(c.paths).length > 1 ? Object.entries(c.paths).map(([p, n]) => `${p} ×${n}`).join(', ') : (c.path ?? '–'),
      count(c),
      rate(c),
      c.flaky ? 'yes' : 'no',
      c.timeToDirectMs.median === null && c.timeToDirectMs.max === null
        ? '–'
        : `${ms1(c.timeToDirectMs.median)} / ${ms1(c.timeToDirectMs.max)}`,
      c.expected === null ? (c.match ? '–' : '❌') : c.match ? '✅' : '❌',
      [...c.reasons.slice(0, 1).map((r) => esc(r) + (c.reasons.length > 1 ? ` (+${c.reasons.length - 1} more in report.json)` : '')), ...c.notes.map((n) => `note: ${esc(n)}`)].join('<br>') || '–',
      noteworthy(c) ? `[${esc(c.evidence)}](${encodeURI(c.evidence)})` : '–',
    ]),
  );

  const hostTable = table(
    ['kernel', 'nft', 'iproute2', 'conntrack', 'node', 'cpus'],
    [[host.kernel, host.nft, host.iproute2, host.conntrack, host.node, String(host.cpus)].map(esc)],
  );

  const single = !several(report) && report.agents[0] ? report.agents[0] : null;
  return [
    `## natmatrix: ${report.scenario}`,
    '',
    report.description,
    '',
    `**${mdVerdict(summary, observe)}**`,
    '',
    ...matrices,
    ...comparison,
    '### Cells',
    '',
    ...details,
    '',
    '### Run',
    '',
    `- run id: \`${report.runId}\``,
    `- started: ${report.startedAt}`,
    `- duration: ${seconds(report.durationMs)}`,
    ...(part ? [`- ${part}`] : []),
    ...(rounds ? [`- ${esc(rounds)}`] : []),
    `- options: tries ${options.tries}, timeout ${options.timeoutMs} ms, jobs ${options.jobs}${observe ? ', observe only' : ''}, internet depth ${report.isolation.internetHops ?? 0} routers`,
    ...(single ? [`- agent: \`${esc(single.name)}\` (\`${esc(single.source)}\`)${agentTraits(single) ? `: ${esc(agentTraits(single))}` : ''}`] : []),
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

/**
 * Where a CI job's summary points for evidence: the artifact's name as given, and on GitHub Actions
 * the workflow run's page (its artifacts are listed there), from the variables GitHub sets.
 */
export function summaryLinks(artifact: string | undefined, env: NodeJS.ProcessEnv = process.env): SummaryLinks {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  return { ...(artifact ? { artifact } : {}), ...(server && repo && run ? { url: `${server}/${repo}/actions/runs/${run}` } : {}) };
}
