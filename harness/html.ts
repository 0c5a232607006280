// report.html: one self-contained page (inline CSS and JS, no network, no fonts, renders from file://)
// for a person to look at a run: per agent a heatmap of the matrix, each cell's details on click, the
// time-to-direct distribution, where several agents differ, and (given a base run's comparison) what
// regressed. A pure function of the report; no I/O.
//
// Every string from the report is escaped (agent output is untrusted): the page is built with the
// `html` tagged template below, which escapes whatever it interpolates unless it is markup this module
// made itself. The page's Content-Security-Policy allows no fetch at all (default-src 'none') and only
// its own script (by hash), so even an escaping slip could neither load nor run anything.
//
// Cells carry data attributes for tests and tools: data-agent, data-a, data-b, data-outcome
// (direct|relayed|failed|error), data-match (true|false), data-rate (connected/tries, 0–1),
// data-successes, data-tries, data-path, data-flaky, data-expected, data-change (with a comparison:
// unchanged|improved|regressed|not comparable), and data-cell (the id its details are under: "d-<id>").

import { createHash } from 'node:crypto';
import { formatP } from './compare.ts';
import { expectationText } from './expect.ts';
import { xmlText } from './junit.ts';
import { adaptiveText, agentTraits, cellAt, isolationLine, pathLetter, shardText, timeDistribution } from './report.ts';
import type { AgentReport, Attempt, Cell, CellComparison, Comparison, Mapping, NatTypeInfo, Report, Summary, TimeDistribution } from './types.ts';

export interface HtmlOptions {
  /** a base run compared with this one (`natmatrix compare`; default: the report's own `baseline`,
   * from --baseline): a diff view */
  comparison?: Comparison | undefined;
  /** the run's tries (attempts.json): each try's result in a cell's details */
  attempts?: Attempt[] | undefined;
}

// ---------------------------------------------------------------------------------------------
// escaping

/** Text safe in HTML content and in quoted attributes: XML's text escape (which also drops the
 * characters XML 1.0, and sane HTML, do not allow), then both quotes. */
export function escapeHtml(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Markup this module made (never a report's string). */
class Raw {
  constructor(readonly s: string) {}
  toString(): string {
    return this.s;
  }
}
type Part = string | number | boolean | Raw | null | undefined | Part[];

function part(v: Part): string {
  if (v === null || v === undefined || v === false || v === true) return '';
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(part).join('');
  return escapeHtml(String(v));
}

/** Markup with every interpolated value escaped (arrays are joined; Raw passes as it is). */
function html(strings: TemplateStringsArray, ...values: Part[]): Raw {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += part(v) + strings[i + 1]!;
  });
  return new Raw(out);
}

/** A run-folder-relative path as a relative link, or null when it is not one (absolute, a scheme). */
export function evidenceHref(path: string, dir: boolean): string | null {
  if (path.startsWith('/') || path.startsWith('\\') || /^[a-z][a-z0-9+.-]*:/i.test(path)) return null;
  const segs = path.split(/[\\/]+/).filter((s) => s !== '' && s !== '.');
  if (!segs.length) return null;
  return segs.map(encodeURIComponent).join('/') + (dir ? '/' : '');
}

function evidenceLink(path: string, dir: boolean, label: Part = path + (dir ? '/' : '')): Raw {
  const href = evidenceHref(path, dir);
  return href === null ? html`<code>${label}</code>` : html`<a href="${href}">${label}</a>`;
}

// ---------------------------------------------------------------------------------------------
// colour: viridis (perceptually uniform, readable with every common colour-vision deficiency)

const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];

const rgb = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
const toHex = (c: number[]): string => '#' + c.map((x) => Math.round(x).toString(16).padStart(2, '0')).join('');

/** The heatmap colour of a success rate in [0, 1]. */
export function rateColour(rate: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(rate) ? rate : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const [p, q] = [rgb(VIRIDIS[i]!), rgb(VIRIDIS[i + 1]!)];
  return toHex(p.map((v, k) => v + (q[k]! - v) * (x - i)));
}

function luminance(hex: string): number {
  const lin = rgb(hex).map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * lin[0]! + 0.7152 * lin[1]! + 0.0722 * lin[2]!;
}

/** Black or white, whichever contrasts more with `bg`. */
function textOn(bg: string): string {
  const l = luminance(bg);
  return (1.05 / (l + 0.05) > (l + 0.05) / 0.05) ? '#ffffff' : '#111111';
}

// ---------------------------------------------------------------------------------------------
// text helpers

const pct = (x: number): string => `${Math.round(x * 100)} %`;
const interval = (lo: number, hi: number): string => `${Math.round(lo * 100)}–${pct(hi)}`;
const ms = (x: number | null): string => (x === null ? '–' : `${(Math.round(x * 10) / 10).toFixed(1)} ms`);
const seconds = (x: number): string => `${(x / 1000).toFixed(1)} s`;
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

const ABBR: Record<Mapping, string> = { 'endpoint-independent': 'EI', 'address-dependent': 'AD', 'address-and-port-dependent': 'APD' };

/** "direct via direct-tcp", or the outcome */
const got = (c: Cell): string => (c.path !== null && c.path !== c.outcome ? `${c.outcome} via ${c.path}` : c.outcome);

/** The letters of the paths a cell's tries won by, most frequent first ("U", "U T"). */
const letters = (c: Cell): string =>
  Object.entries(c.paths).sort((x, y) => y[1] - x[1]).map(([p]) => pathLetter(p)).join(' ');

function verdictOf(c: Cell, observe: boolean): { mark: string; word: string; cls: string } {
  if (c.outcome === 'error') return { mark: '⚠', word: 'error', cls: 'error' };
  if (!c.match && !observe) return { mark: c.flaky ? '✗~' : '✗', word: 'not as expected', cls: 'mismatch' };
  if (c.expected === null || observe) return { mark: c.flaky ? '~' : '', word: 'observed', cls: 'ok' };
  return { mark: c.flaky ? '✓~' : '✓', word: 'as expected', cls: 'ok' };
}

function cellSentence(c: Cell, observe: boolean): string {
  const v = verdictOf(c, observe);
  const head = `${c.agent ? `${c.agent}: ` : ''}${c.a} × ${c.b}: ${c.successes} of ${c.tries} connected`;
  const how = c.outcome === 'error' ? `error (${c.errors} of ${c.tries} tries errored)` : got(c);
  const want = v.cls === 'mismatch' ? `, expected ${expectationText(c.expected)}` : '';
  return `${head}, ${how}${c.flaky ? ', flaky' : ''}, ${v.word}${want}`;
}

// ---------------------------------------------------------------------------------------------
// the page's parts

interface Ctx {
  report: Report;
  observe: boolean;
  agents: Array<AgentReport | null>;
  tries: Map<string, Attempt[]>;
  changes: Map<string, CellComparison>;
  comparison: Comparison | undefined;
  nat: Map<string, NatTypeInfo>;
  /** the id of each agent's cell (a, b) */
  ids: Map<string, string>;
}

const key = (agent: string, a: string, b: string): string => `${agent}\u0000${a}\u0000${b}`;
const agentName = (ctx: Ctx, agent: AgentReport | null): string => agent?.name ?? ctx.report.cells[0]?.agent ?? '';

function natHeader(ctx: Ctx, name: string, scope: 'row' | 'col'): Raw {
  const t = ctx.nat.get(name);
  const title = t?.title ?? name;
  const rfc = t
    ? html`<span class="rfc"><abbr title="${`mapping: ${t.mapping}`}">${ABBR[t.mapping] ?? t.mapping}M</abbr> · <abbr title="${`filtering: ${t.filtering}`}">${ABBR[t.filtering] ?? t.filtering}F</abbr></span>`
    : '';
  return html`<th scope="${scope}" title="${t ? `${name}: mapping ${t.mapping}, filtering ${t.filtering}` : name}"><span class="nt">${title}</span>${rfc}</th>`;
}

function changeBadge(ch: CellComparison | undefined): Raw | '' {
  if (!ch) return '';
  const sym = ch.change === 'regressed' ? '▼' : ch.change === 'improved' ? '▲' : ch.change === 'unchanged' ? '' : '≠';
  if (!sym) return '';
  return html`<span class="${`chg chg-${ch.change.replace(' ', '-')}`}" title="${`${ch.change} since the base run: ${ch.reason}`}">${sym}</span>`;
}

function heatCell(ctx: Ctx, c: Cell | undefined, agent: string, ri: number, ci: number, a: string, b: string): Raw {
  if (!c) return html`<td><span class="cell none" data-agent="${agent}" data-a="${a}" data-b="${b}" data-outcome="none">–</span></td>`;
  const id = ctx.ids.get(key(agent, a, b))!;
  const v = verdictOf(c, ctx.observe);
  const ch = ctx.changes.get(key(c.agent, a, b));
  const bg = rateColour(c.successRate.rate);
  const style = c.outcome === 'error' ? '' : `--c-bg:${bg};--c-fg:${textOn(bg)}`;
  const sentence = cellSentence(c, ctx.observe) + (ch ? `; ${ch.change} since the base run` : '');
  return html`<td><button type="button" class="${`cell ${v.cls}${c.flaky ? ' flaky' : ''}`}" style="${style}" id="${`b-${id}`}" data-cell="${id}" data-r="${ri}" data-c="${ci}" data-agent="${agent}" data-a="${a}" data-b="${b}" data-outcome="${c.outcome}" data-match="${String(c.match)}" data-rate="${String(c.successRate.rate)}" data-successes="${c.successes}" data-tries="${c.tries}" data-path="${c.path ?? ''}" data-flaky="${String(c.flaky)}" data-expected="${expectationText(c.expected)}" ${ch ? html`data-change="${ch.change}" ` : ''}aria-controls="${`d-${id}`}" aria-expanded="false" aria-label="${sentence}" title="${sentence}">${v.mark ? html`<span class="mk" aria-hidden="true">${v.mark}</span>` : ''}${changeBadge(ch)}<span class="n">${c.outcome === 'error' ? html`ERR ${c.successes}/${c.tries}` : `${c.successes}/${c.tries}`}</span>${letters(c) ? html`<span class="p">${letters(c)}</span>` : ''}${v.cls === 'mismatch' ? html`<span class="w">${c.flaky ? 'flaky, ' : ''}want ${expectationText(c.expected)}</span>` : ''}</button></td>`;
}

function matrix(ctx: Ctx, agent: AgentReport | null): Raw {
  const { report } = ctx;
  const name = agentName(ctx, agent);
  const caption = `${name ? `agent ${name}: ` : ''}side A NAT (rows) against side B NAT (columns); each cell: connected tries / tries, the path that won`;
  return html`<div class="scroll"><table class="matrix" data-agent="${name}"><caption class="sr">${caption}</caption>
<thead><tr><th class="corner" scope="col"><span>A ↓ · B →</span></th>${report.cols.map((b) => natHeader(ctx, b, 'col'))}</tr></thead>
<tbody>${report.rows.map((a, ri) => html`<tr>${natHeader(ctx, a, 'row')}${report.cols.map((b, ci) => heatCell(ctx, cellAt(report, a, b, agent?.name), name, ri, ci, a, b))}</tr>\n`)}</tbody></table></div>`;
}

/** "all 25 pairings as expected"; `noun` is "cell" over several agents' matrices */
function summaryText(s: Summary, observe: boolean, noun = 'pairing'): string {
  const flaky = s.flaky ? ` (${s.flaky} flaky)` : '';
  const errored = s.errored ? `${s.errored} errored` : '';
  if (observe) return `${plural(s.cells, noun)} observed (no expectations)${errored ? `, ${errored}` : ''}${flaky}`;
  const mismatched = s.mismatched - s.errored;
  if (mismatched <= 0 && !s.errored) return `all ${plural(s.cells, noun)} as expected${flaky}`;
  if (mismatched <= 0) return `${s.errored} of ${plural(s.cells, noun)} errored${flaky}`;
  return `${mismatched} of ${plural(s.cells, noun)} not as expected${errored ? `, ${errored}` : ''}${flaky}`;
}

function verdictBadge(report: Report, observe: boolean): Raw {
  const s = report.summary;
  const cls = s.errored ? 'bad' : observe ? 'info' : s.mismatched ? 'bad' : 'good';
  const mark = s.errored ? '⚠' : observe ? '👀' : s.mismatched ? '✗' : '✓';
  return html`<p class="${`verdict ${cls}`}" id="verdict"><span aria-hidden="true">${mark}</span> ${summaryText(s, observe, report.agents.length > 1 ? 'cell' : 'pairing')}</p>`;
}

function legend(ctx: Ctx): Raw {
  const stops = VIRIDIS.map((c, i) => `${c} ${Math.round((100 * i) / (VIRIDIS.length - 1))}%`).join(', ');
  const used = [...new Set(ctx.report.cells.flatMap((c) => Object.keys(c.paths)))].sort();
  return html`<div class="legend">
<div class="scale"><span>0 %</span><span class="bar" style="${`background:linear-gradient(90deg, ${stops})`}" role="img" aria-label="colour scale: connected tries out of tries, 0 % to 100 %"></span><span>100 % connected</span></div>
<ul class="keys">${ctx.observe ? '' : html`<li><span class="swatch k-ok">✓</span> as expected</li><li><span class="swatch k-mis">✗</span> not as expected (heavy outline; “want” says what was expected)</li>`}<li><span class="swatch k-err">⚠</span> error (hatched)</li><li><span class="swatch">~</span> flaky: the tries differed</li>${ctx.comparison ? html`<li><span class="swatch k-reg">▼</span> regressed · <span class="swatch k-imp">▲</span> improved · <span class="swatch">≠</span> not comparable (vs base run)</li>` : ''}${used.map((p) => html`<li><span class="swatch">${pathLetter(p)}</span> ${p}</li>`)}</ul></div>`;
}

function needsALook(ctx: Ctx): Raw | '' {
  const cells = ctx.agents.flatMap((agent) => ctx.report.rows.flatMap((a) => ctx.report.cols.flatMap((b) => cellAt(ctx.report, a, b, agent?.name) ?? [])));
  const bad = cells.filter((c) => c.outcome === 'error' || (!c.match && !ctx.observe));
  if (!bad.length) return '';
  return html`<section class="look" aria-labelledby="look-h"><h2 id="look-h">Needs a look (${bad.length})</h2><ul>${bad.map((c) => {
    const id = ctx.ids.get(key(c.agent, c.a, c.b))!;
    const v = verdictOf(c, ctx.observe);
    const what = c.outcome === 'error' ? `error: ${c.errors} of ${c.tries} tries errored` : `expected ${expectationText(c.expected)}, got ${got(c)} ${c.successes}/${c.tries}${c.flaky ? ' (flaky)' : ''}`;
    return html`<li class="${v.cls}"><a href="${`#${id}`}" data-cell="${id}"><span aria-hidden="true">${v.mark}</span> ${c.agent ? `${c.agent}: ` : ''}${c.a} × ${c.b}</a> — ${what}${c.reasons[0] ? html`<br><span class="reason">${c.reasons[0]}</span>` : ''}</li>`;
  })}</ul></section>`;
}

// ---------------------------------------------------------------------------------------------
// a cell's details

/** At most this many tries are listed in a cell's details (every try is in attempts.json). */
export const MAX_TRIES_LISTED = 20;

/** The tries to list: all of them up to the limit; past it, those that did not connect first. */
function listed(tries: Attempt[]): { shown: Attempt[]; left: number } {
  if (tries.length <= MAX_TRIES_LISTED) return { shown: tries, left: 0 };
  const connected = (t: Attempt) => t.outcome === 'direct' || t.outcome === 'relayed';
  const first = tries.filter((t) => !connected(t)).slice(0, MAX_TRIES_LISTED);
  const more = tries.filter(connected).slice(0, MAX_TRIES_LISTED - first.length);
  const shown = [...first, ...more].sort((x, y) => x.try - y.try);
  return { shown, left: tries.length - shown.length };
}

function tryRows(ctx: Ctx, all: Attempt[]): Raw {
  const { shown: tries, left } = listed(all);
  const sym: Record<string, string> = { direct: '●', relayed: '◐', failed: '○', error: '⚠' };
  return html`<table class="tries"><thead><tr><th scope="col">try</th><th scope="col">result</th><th scope="col"><abbr title="time-to-direct">to direct</abbr></th><th scope="col">agents</th><th scope="col">evidence</th></tr></thead><tbody>${tries.map((t) => {
    const exits = (['a', 'b'] as const).map((r) => {
      const x = t.agents[r];
      const how = x.timedOut ? 'timed out' : x.stopped ? 'stopped' : x.signal ? `killed by ${x.signal}` : `exit ${x.exitCode ?? '?'}`;
      return html`<span class="exit">${r}: ${how}, ${seconds(x.durationMs)}${x.verdictProblem ? ` (${x.verdictProblem})` : ''}${x.leftover.length ? ` · left ${x.leftover.join(', ')}` : ''}</span>`;
    });
    const files = (['a', 'b'] as const).map((r) => html`<span class="files">${r}: ${evidenceLink(t.agents[r].stdout, false, 'out')} ${evidenceLink(t.agents[r].stderr, false, 'err')}</span>`);
    const failing = t.outcome !== 'direct' && t.outcome !== 'relayed';
    const tails = failing
      ? (['a', 'b'] as const).filter((r) => t.agents[r].stderrTail.trim()).map((r) => html`<details><summary>${r}'s last stderr lines</summary><pre>${t.agents[r].stderrTail}</pre></details>`)
      : [];
    const more = t.reason || t.notes.length || tails.length
      ? html`<tr class="more"><td></td><td colspan="4">${t.reason ? html`<p class="reason">${t.reason}</p>` : ''}${t.notes.map((n) => html`<p class="note">note: ${n}</p>`)}${tails}</td></tr>`
      : '';
    return html`<tr class="${`t-${t.outcome}`}"><td>${t.try}</td><td><span aria-hidden="true">${sym[t.outcome] ?? '?'}</span> ${(t.outcome === 'direct' || t.outcome === 'relayed') && t.path ? t.path : t.outcome}</td><td>${ms(t.timeToDirectMs)}</td><td>${exits}</td><td>${evidenceLink(t.evidence, true, 'folder')}${files}</td></tr>${more}`;
  })}</tbody></table>${left ? html`<p class="muted">${`${left} more tr${left === 1 ? 'y' : 'ies'} not listed (those that did not connect come first; every try is in attempts.json)`}</p>` : ''}`;
}

function detail(ctx: Ctx, c: Cell, id: string): Raw {
  const v = verdictOf(c, ctx.observe);
  const tries = ctx.tries.get(key(c.agent, c.a, c.b)) ?? [];
  const ch = ctx.changes.get(key(c.agent, c.a, c.b));
  const ttd = c.timeToDirectMs;
  const paths = Object.entries(c.paths).map(([p, n]) => `${p} ×${n}`).join(', ');
  const natLine = (n: string) => {
    const t = ctx.nat.get(n);
    return t ? `${t.title}${t.title !== n ? ` (${n})` : ''}: ${ABBR[t.mapping] ?? t.mapping}M, ${ABBR[t.filtering] ?? t.filtering}F` : n;
  };
  const headline = v.cls === 'mismatch'
    ? `expected ${expectationText(c.expected)}, got ${got(c)} ${c.successes}/${c.tries}${c.flaky ? ' (flaky)' : ''}`
    : v.cls === 'error' ? `error: ${c.errors} of ${c.tries} tries errored` : `${v.word}: ${got(c)} ${c.successes}/${c.tries}`;
  return html`<div class="detail" id="${`d-${id}`}" role="region" aria-labelledby="${`h-${id}`}" hidden>
<div class="dh"><h3 id="${`h-${id}`}" tabindex="-1">${c.agent ? html`<span class="ag">${c.agent}</span> · ` : ''}${c.a} × ${c.b}</h3><button type="button" class="close" data-close="${id}" aria-label="close the details">×</button></div>
<p class="${`dv ${v.cls}`}"><span aria-hidden="true">${v.mark}</span> ${headline}</p>
<dl>
<dt>side A</dt><dd>${natLine(c.a)}</dd>
<dt>side B</dt><dd>${natLine(c.b)}</dd>
<dt>expected</dt><dd>${expectationText(c.expected)}</dd>
<dt>outcome</dt><dd>${got(c)}${c.flaky ? ' (flaky: the tries differed)' : ''}</dd>
<dt>connected</dt><dd>${c.successes}/${c.tries} · ${pct(c.successRate.rate)} <span class="ci">(95 % Wilson interval ${interval(c.successRate.low, c.successRate.high)})</span></dd>
<dt>failed / errors</dt><dd>${c.failures} / ${c.errors}</dd>
<dt>paths</dt><dd>${paths || 'none connected'}</dd>
${c.rate ? html`<dt>rate</dt><dd>${c.rate.successes}/${c.tries}${c.rate.path ? ` by ${c.rate.path}` : ''}, interval ${interval(c.rate.low, c.rate.high)} against ≥ ${pct(c.rate.atLeast)}: ${c.rate.confirmed ? 'confirmed' : c.rate.holds ? 'holds (not yet confirmed)' : 'refuted'}</dd>` : ''}
<dt>time-to-direct</dt><dd>${ttd.samples.length ? html`median ${ms(ttd.median)} · max ${ms(ttd.max)}<br><span class="samples">samples: ${ttd.samples.map((x) => (Math.round(x * 10) / 10).toFixed(1)).join(', ')} ms</span>` : 'no connected try'}</dd>
${ch ? html`<dt>vs base run</dt><dd class="${`chg-${ch.change.replace(' ', '-')}`}" data-change="${ch.change}">${ch.change}${ch.pValue !== null ? ` (${formatP(ch.pValue)})` : ''}: ${ch.reason}</dd>` : ''}
</dl>
${c.reasons.length ? html`<h4>Reasons</h4><ul class="reasons">${c.reasons.map((r) => html`<li>${r}</li>`)}</ul>` : ''}
${c.notes.length ? html`<h4>Notes</h4><ul class="notes">${c.notes.map((n) => html`<li>${n}</li>`)}</ul>` : ''}
<h4>Tries</h4>
${tries.length ? tryRows(ctx, tries) : html`<p class="muted">${ctx.tries.size ? 'no tries recorded for this cell' : 'each try is in attempts.json (render with attempts to list them here)'}</p>`}
<p class="evidence">Evidence: ${evidenceLink(c.evidence, true)}</p>
</div>`;
}

// ---------------------------------------------------------------------------------------------
// time-to-direct histogram

function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * e).find((s) => s >= raw) ?? 10 * e;
}

function histogram(name: string, samples: number[], dist: TimeDistribution, top: number, idx: number): Raw {
  const W = 560;
  const H = 150;
  const L = 36;
  const R = 12;
  const T = 18;
  const B = 30;
  const caption = dist.n === 0 ? `${name ? `${name}: ` : ''}no connected try` : `${name ? `${name}: ` : ''}median ${ms(dist.median)}, p90 ${ms(dist.p90)}, max ${ms(dist.max)} over ${plural(dist.n, 'connected try', 'connected tries')}`;
  if (!samples.length) return html`<figure class="hist"><figcaption>${caption}</figcaption></figure>`;
  const bins = Math.max(1, Math.min(40, Math.ceil(top / niceStep(top / 24))));
  const width = niceStep(top / 24);
  const counts = Array.from({ length: bins }, () => 0);
  for (const s of samples) counts[Math.min(bins - 1, Math.max(0, Math.floor(s / width)))]!++;
  const span = bins * width;
  const yMax = Math.max(...counts);
  const x = (v: number) => L + ((W - L - R) * v) / span;
  const y = (n: number) => H - B - ((H - B - T) * n) / yMax;
  const bars = counts.map((n, i) => (n ? html`<rect x="${(x(i * width) + 0.5).toFixed(1)}" y="${y(n).toFixed(1)}" width="${Math.max(1, x(width) - x(0) - 1).toFixed(1)}" height="${(H - B - y(n)).toFixed(1)}"><title>${`${i * width}–${(i + 1) * width} ms: ${n}`}</title></rect>` : ''));
  const tickStep = niceStep(span / 6);
  const ticks: number[] = [];
  for (let t = 0; t <= span + 1e-9; t += tickStep) ticks.push(Math.round(t * 1000) / 1000);
  const marker = (v: number | null, label: string, cls: string, dy: number) =>
    v === null ? '' : html`<line class="${cls}" x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${T - 4}" y2="${H - B}"/><text class="${`${cls}-t`}" x="${(x(v) + 3).toFixed(1)}" y="${T + dy}">${label}</text>`;
  const titleId = `hist-${idx}`;
  return html`<figure class="hist"><svg viewBox="${`0 0 ${W} ${H}`}" role="img" aria-labelledby="${titleId}" preserveAspectRatio="xMinYMin meet"><title id="${titleId}">${`time-to-direct histogram, ${caption}`}</title>
<g class="bars">${bars}</g>
<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>
${ticks.map((t) => html`<line class="axis" x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${H - B}" y2="${H - B + 4}"/><text class="tick" x="${x(t).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${t}</text>`)}
<text class="tick" x="${W - R}" y="${H - 2}" text-anchor="end">ms</text>
<text class="tick" x="${L - 6}" y="${T + 4}" text-anchor="end">${yMax}</text><text class="tick" x="${L - 6}" y="${H - B}" text-anchor="end">0</text>
${marker(dist.median, 'median', 'med', 0)}${marker(dist.p90, 'p90', 'p90', 11)}
</svg><figcaption>${caption}</figcaption></figure>`;
}

function distributions(ctx: Ctx): Raw {
  const per = ctx.agents.map((agent) => {
    const cells = ctx.report.cells.filter((c) => agent === null || c.agent === agent.name);
    const samples = cells.flatMap((c) => c.timeToDirectMs.samples);
    return { name: agentName(ctx, agent), samples, dist: agent?.timeToDirect ?? timeDistribution(cells) };
  });
  const top = Math.max(1, ...per.flatMap((p) => p.samples));
  return html`<section aria-labelledby="ttd-h"><h2 id="ttd-h">Time-to-direct</h2><p class="muted">Per connected try: from learning the peer to a confirmed two-way path${per.length > 1 ? ' (one axis for every agent)' : ''}.</p><div class="hists">${per.map((p, i) => histogram(p.name, p.samples, p.dist, top, i))}</div></section>`;
}

// ---------------------------------------------------------------------------------------------
// several agents; a base run

function agentsDiffer(ctx: Ctx): Raw | '' {
  const { report } = ctx;
  if (report.agents.length < 2) return '';
  const pairings = report.rows.length * report.cols.length;
  const differ = new Map(report.comparison.map((d) => [`${d.a}\u0000${d.b}`, d] as const));
  const outcomes = report.comparison.filter((d) => new Set(Object.values(d.byAgent).map((x) => x.outcome)).size > 1).length;
  const cell = (a: string, b: string): Raw => {
    const d = differ.get(`${a}\u0000${b}`);
    const kind = !d ? 'none' : new Set(Object.values(d.byAgent).map((x) => x.outcome)).size > 1 ? 'outcome' : 'path';
    const each = report.agents.map((x) => {
      const c = cellAt(report, a, b, x.name);
      const id = ctx.ids.get(key(x.name, a, b));
      const text = c ? `${c.successes}/${c.tries} ${c.outcome === 'error' ? 'error' : c.path ? pathLetter(c.path) : c.outcome}` : '–';
      const body = html`<span class="an">${x.name}</span> ${text}`;
      return id ? html`<a href="${`#${id}`}" data-cell="${id}">${body}</a>` : html`<span>${body}</span>`;
    });
    const label = kind === 'none' ? 'the agents agree' : kind === 'outcome' ? 'the agents come to different outcomes' : 'the agents connect by different paths';
    return html`<td><div class="${`xcell x-${kind}`}" data-a="${a}" data-b="${b}" data-differ="${kind}" title="${`${a} × ${b}: ${label}`}">${kind === 'outcome' ? html`<span class="mk" aria-hidden="true">≠</span>` : ''}${each}</div></td>`;
  };
  return html`<section aria-labelledby="diff-agents-h"><h2 id="diff-agents-h">Where the agents differ</h2>
<p>${report.comparison.length
    ? `The agents differ on ${report.comparison.length} of ${plural(pairings, 'pairing')}: ${outcomes} by outcome (≠, heavy outline), ${report.comparison.length - outcomes} only by the path that won (outlined); the rest agree (faded).`
    : `The agents agree on all ${plural(pairings, 'pairing')}.`}</p>
<div class="scroll"><table class="matrix differ" id="agents-differ"><caption class="sr">each agent's result per pairing</caption><thead><tr><th class="corner" scope="col"><span>A ↓ · B →</span></th>${report.cols.map((b) => natHeader(ctx, b, 'col'))}</tr></thead><tbody>${report.rows.map((a) => html`<tr>${natHeader(ctx, a, 'row')}${report.cols.map((b) => cell(a, b))}</tr>`)}</tbody></table></div></section>`;
}

function diffCell(ctx: Ctx, agent: string, a: string, b: string): Raw {
  const ch = ctx.changes.get(key(agent, a, b));
  const id = ctx.ids.get(key(agent, a, b));
  if (!ch) return html`<td><span class="dcell none" data-agent="${agent}" data-a="${a}" data-b="${b}">–</span></td>`;
  const measure = ch.measure ?? 'connected';
  const count = (x: CellComparison['base']) => (x ? `${measure === 'direct' ? x.direct : x.successes}/${x.tries}` : '–');
  const sym = ch.change === 'regressed' ? '▼' : ch.change === 'improved' ? '▲' : ch.change === 'unchanged' ? '=' : '≠';
  const label = `${agent ? `${agent}: ` : ''}${a} × ${b}: ${ch.change}; ${ch.reason}`;
  const inner = html`<span class="mk" aria-hidden="true">${sym}</span>${ch.change === 'unchanged' ? html`<span class="sr">unchanged</span>` : html`<span class="chw">${ch.change}</span>`}<span class="n">${count(ch.base)} → ${count(ch.next)}</span>${ch.pValue !== null && ch.change !== 'unchanged' ? html`<span class="pv">${formatP(ch.pValue)}</span>` : ''}`;
  const attrs = html`class="${`dcell chg-${ch.change.replace(' ', '-')}`}" data-agent="${agent}" data-a="${a}" data-b="${b}" data-change="${ch.change}" data-p="${ch.pValue === null ? '' : String(ch.pValue)}" title="${label}" aria-label="${label}"`;
  return id
    ? html`<td><button type="button" ${attrs} data-cell="${id}" aria-controls="${`d-${id}`}">${inner}</button></td>`
    : html`<td><span ${attrs}>${inner}</span></td>`;
}

function baseDiff(ctx: Ctx): Raw | '' {
  const cmp = ctx.comparison;
  if (!cmp) return '';
  const { report } = ctx;
  const s = cmp.summary;
  const inMatrix = new Set(ctx.agents.flatMap((agent) => report.rows.flatMap((a) => report.cols.map((b) => key(agentName(ctx, agent), a, b)))));
  const outside = cmp.cells.filter((c) => !inMatrix.has(key(c.agent, c.a, c.b)));
  const cls = s.regressed ? 'bad' : s.improved ? 'good' : 'info';
  return html`<section aria-labelledby="base-h" id="base-diff"><h2 id="base-h">Compared with the base run</h2>
<p>Base: <code>${cmp.base.runId}</code> (${cmp.base.scenario}, natmatrix ${cmp.base.version}, ${cmp.base.startedAt}) → this run <code>${cmp.next.runId}</code>. A change counts when its p-value is below α = ${cmp.alpha}.</p>
<p class="${`verdict ${cls}`}">${s.regressed ? html`<span class="chg-regressed">▼ ${s.regressed} regressed</span> · ` : ''}${s.improved ? html`<span class="chg-improved">▲ ${s.improved} improved</span> · ` : ''}${s.unchanged} unchanged · ${s.notComparable} not comparable</p>
${ctx.agents.map((agent) => {
    const name = agentName(ctx, agent);
    return html`${ctx.agents.length > 1 ? html`<h3>${`agent ${name}`}</h3>` : ''}<div class="scroll"><table class="matrix diff" data-agent="${name}"><caption class="sr">${`changes since the base run${name ? ` for agent ${name}` : ''}`}</caption><thead><tr><th class="corner" scope="col"><span>A ↓ · B →</span></th>${report.cols.map((b) => natHeader(ctx, b, 'col'))}</tr></thead><tbody>${report.rows.map((a) => html`<tr>${natHeader(ctx, a, 'row')}${report.cols.map((b) => diffCell(ctx, name, a, b))}</tr>`)}</tbody></table></div>`;
  })}
${outside.length ? html`<h3>Only in one of the runs</h3><ul>${outside.map((c) => html`<li>${c.agent ? `${c.agent}: ` : ''}${c.a} × ${c.b}: ${c.change} — ${c.reason}</li>`)}</ul>` : ''}
</section>`;
}

// ---------------------------------------------------------------------------------------------
// the page

const CSS = `
:root{--fg:#1b1b1f;--muted:#5d5d6a;--line:#d4d4dc;--bg:#fff;--soft:#f5f5f8;--bad:#b00020;--good:#00704a;--info:#2c4f8a;--focus:#1a5fd0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
a{color:#1a4fb0}
a:focus-visible,button:focus-visible,[tabindex]:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:0 3px;border-radius:3px;overflow-wrap:anywhere}
pre{font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:6px 8px;border-radius:4px;white-space:pre-wrap;overflow-wrap:anywhere;max-height:16em;overflow:auto}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;z-index:9}
header{padding:16px 20px 8px;border-bottom:1px solid var(--line);max-width:1560px;margin:0 auto}
h1{font-size:22px;margin:0 0 2px}h1 .tool{color:var(--muted);font-weight:400}
h2{font-size:17px;margin:22px 0 8px}h3{font-size:15px;margin:14px 0 6px}h4{font-size:13px;margin:12px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.desc{margin:0 0 8px;color:var(--muted)}
.verdict{display:inline-block;font-weight:600;padding:4px 10px;border-radius:6px;margin:6px 0;border:2px solid currentColor}
.verdict.good{color:var(--good)}.verdict.bad{color:var(--bad)}.verdict.info{color:var(--info)}
.facts{display:flex;flex-wrap:wrap;gap:4px 18px;margin:6px 0 0;padding:0}
.facts div{display:flex;gap:6px}.facts dt{color:var(--muted)}.facts dd{margin:0}
.agents{margin:6px 0 0;padding-left:18px;color:var(--muted)}
.warn{color:#8a4b00}
.wrap{display:grid;grid-template-columns:minmax(0,1fr) minmax(300px,400px);gap:20px;max-width:1560px;margin:0 auto;padding:4px 20px 24px}
main{min-width:0}
.scroll{overflow-x:auto;padding:4px}
table.matrix{border-collapse:separate;border-spacing:4px}
.matrix th{font-weight:600;font-size:12.5px;text-align:center;vertical-align:bottom;padding:2px 4px;max-width:9rem}
.matrix tbody th{text-align:right;vertical-align:middle}
.matrix .nt{display:block}
.matrix .rfc{display:block;font-weight:400;color:var(--muted);font-size:11px}
.matrix abbr{text-decoration:none}
.corner span{font-weight:400;color:var(--muted);font-size:11px}
.matrix td{padding:0;width:6.6rem}
.matrix thead th:not(.corner){width:6.6rem}
.cell,.dcell{position:relative;display:flex;flex-direction:column;align-items:center;justify-content:center;width:100%;min-width:5.6rem;min-height:3.5rem;padding:5px 6px;border:4px solid transparent;border-radius:7px;font:inherit;line-height:1.2}
button.cell,button.dcell{cursor:pointer}
.cell{background:var(--c-bg,#eee);color:var(--c-fg,#111)}
.cell .n{font-size:16px;font-weight:700;font-variant-numeric:tabular-nums}
.cell .p{font-size:12px;font-weight:600;letter-spacing:.08em}
.cell .w{font-size:11px;font-weight:600}
.cell .mk,.dcell .mk{position:absolute;top:1px;left:4px;font-size:12px;font-weight:700}
.cell.mismatch{border-color:#111;box-shadow:inset 0 0 0 2px #fff,0 0 0 1px #fff}
.cell.mismatch{padding-top:14px}
.cell.mismatch .mk{top:-2px;left:-2px;background:#111;color:#fff;border-radius:0 0 6px 0;padding:0 5px 1px 4px;font-size:13px}
.cell.error{background:repeating-linear-gradient(45deg,#ececec 0 6px,#cdcdcd 6px 12px);color:#111;border:4px dashed #111}
.cell.none,.dcell.none{color:var(--muted);background:var(--soft)}
.cell[aria-expanded=true],.dcell[aria-expanded=true]{box-shadow:0 0 0 3px var(--bg),0 0 0 6px var(--focus)}
.cell .chg{position:absolute;top:1px;right:4px;font-size:12px}
.cell .chg-regressed{color:#fff;background:var(--bad);border-radius:3px;padding:0 3px}
.cell .chg-improved{color:#fff;background:var(--good);border-radius:3px;padding:0 3px}
.xcell{display:flex;flex-direction:column;align-items:flex-start;justify-content:center;min-height:3.2rem;padding:4px 6px 4px 16px;border-radius:7px;position:relative;font-size:12px;border:2px solid var(--line);font-variant-numeric:tabular-nums}
.xcell .an{color:var(--muted);display:inline-block;min-width:2.3em}.xcell a,.xcell>span{text-decoration:none;color:inherit;white-space:nowrap}.xcell a:hover{text-decoration:underline}
.xcell.x-none{opacity:.55;border-style:dotted}.xcell.x-outcome{border:4px solid #7a1f7a;background:#f7eef7}.xcell .mk{position:absolute;top:2px;left:5px;font-weight:700;color:#7a1f7a}
.dcell{background:var(--soft);color:var(--fg);border-color:var(--line);border-width:2px}
.dcell .chw{font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.dcell .n{font-variant-numeric:tabular-nums}.dcell .pv{font-size:11px}
.dcell.chg-regressed{background:#b00020;color:#fff;border-color:#6d0014}
.dcell.chg-improved{background:#00704a;color:#fff;border-color:#00422b}
.dcell.chg-not-comparable{background:repeating-linear-gradient(45deg,#f4f4f4 0 5px,#e4e4e4 5px 10px)}
dd.chg-regressed{color:var(--bad);font-weight:600}dd.chg-improved{color:var(--good);font-weight:600}
span.chg-regressed{color:var(--bad)}span.chg-improved{color:var(--good)}
.legend{display:flex;flex-wrap:wrap;align-items:center;gap:8px 24px;margin:8px 0 4px;font-size:12.5px;color:var(--muted)}
.scale{display:flex;align-items:center;gap:6px}.scale .bar{display:inline-block;width:160px;height:12px;border-radius:3px}
.keys{display:flex;flex-wrap:wrap;gap:4px 14px;margin:0;padding:0;list-style:none}
.swatch{display:inline-block;min-width:1.4em;text-align:center;font-weight:700;border:1px solid var(--line);border-radius:3px;color:var(--fg);background:var(--soft)}
.swatch.k-mis{background:#111;color:#fff}.swatch.k-err{background:repeating-linear-gradient(45deg,#ececec 0 3px,#cdcdcd 3px 6px)}
.swatch.k-reg{background:var(--bad);color:#fff}.swatch.k-imp{background:var(--good);color:#fff}
.agent{margin-top:14px}.agent .meta{color:var(--muted);margin:0 0 4px}
.look ul{padding-left:18px;margin:4px 0}.look li{margin:3px 0}.look .reason{color:var(--muted);font-size:12.5px;overflow-wrap:anywhere}
.look li.mismatch a,.look li.error a{font-weight:600}
table.plain{border-collapse:collapse;font-size:13px}.plain th,.plain td{border:1px solid var(--line);padding:3px 8px;text-align:left}
.hists{display:flex;flex-wrap:wrap;gap:8px 24px}
.hist{margin:0;flex:1 1 420px;max-width:600px}.hist svg{width:100%;height:auto;display:block}
.hist figcaption{font-size:12.5px;color:var(--muted)}
.hist rect{fill:#3b528b}.hist .axis{stroke:#666;stroke-width:1}.hist .tick{font-size:10px;fill:#555}
.hist .med{stroke:#b35900;stroke-width:1.5;stroke-dasharray:4 3}.hist .p90{stroke:#7a1f7a;stroke-width:1.5;stroke-dasharray:1 3}
.hist .med-t{font-size:10px;fill:#b35900}.hist .p90-t{font-size:10px;fill:#7a1f7a}
aside.panel{position:sticky;top:10px;align-self:start;max-height:calc(100vh - 20px);overflow:auto;border:1px solid var(--line);border-radius:8px;background:var(--bg);padding:10px 14px;margin-top:16px}
aside.panel>h2{margin-top:2px}
.dh{display:flex;align-items:flex-start;justify-content:space-between;gap:8px}
.dh h3{margin:2px 0 4px;overflow-wrap:anywhere}.dh .ag{color:var(--muted)}
.close{font:inherit;font-size:18px;line-height:1;background:none;border:1px solid var(--line);border-radius:4px;padding:0 7px;cursor:pointer}
.dv{font-weight:600;margin:2px 0 6px}.dv.mismatch,.dv.error{color:var(--bad)}.dv.ok{color:var(--good)}
.detail dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:6px 0}
.detail dt{color:var(--muted)}.detail dd{margin:0;overflow-wrap:anywhere}
.ci{color:var(--muted)}.samples{font-size:12px;color:var(--muted)}
.detail ul{padding-left:18px;margin:2px 0}.detail li{overflow-wrap:anywhere}
table.tries{border-collapse:collapse;font-size:12.5px;width:100%}
.tries th,.tries td{border-bottom:1px solid var(--line);padding:3px 4px;text-align:left;vertical-align:top}
.tries .exit,.tries .files{display:block;white-space:nowrap}.tries abbr{text-decoration:none}
.tries tr.t-failed td:first-child,.tries tr.t-error td:first-child{font-weight:700}
.tries .more td{border-bottom:1px solid var(--line)}.tries .reason,.tries .note{margin:0 0 2px;overflow-wrap:anywhere}
.muted{color:var(--muted)}
footer{max-width:1560px;margin:0 auto;padding:8px 20px 24px;color:var(--muted);font-size:12px}
@media (max-width:1000px){.wrap{grid-template-columns:minmax(0,1fr)}aside.panel{position:static;max-height:none}}
@media (max-width:560px){body{font-size:13px}header,.wrap{padding-left:10px;padding-right:10px}.cell,.dcell{min-width:3.6rem;min-height:3.2rem;padding:3px}.cell .n{font-size:14px}.matrix th{max-width:6rem;font-size:11px}.matrix td,.matrix thead th:not(.corner){width:4.2rem}}
@media print{
  body{font-size:11px}.wrap{display:block;padding:0}aside.panel,.close,.skip,.noprint{display:none!important}
  header{border:0;padding:0}.scroll{overflow:visible}
  .cell,.dcell,.swatch,.scale .bar,.verdict{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  section,.agent,table{break-inside:avoid}a{color:inherit;text-decoration:none}
}
`;

// The page's behaviour: select a cell (click, Enter/Space on its button, a #<id> link or the URL's
// hash) to show its details; arrow keys move between a matrix's cells; Escape closes the details.
const JS = `(() => {
  'use strict';
  const panel = document.getElementById('panel');
  const empty = document.getElementById('panel-empty');
  const narrow = window.matchMedia('(max-width: 1000px)');
  let shown = null;
  function buttons(id) { return document.querySelectorAll('button[data-cell="' + id + '"]'); }
  function select(id, focus, user) {
    if (!/^c[0-9]+-[0-9]+-[0-9]+$/.test(id)) return false;
    const d = document.getElementById('d-' + id);
    if (!d) return false;
    if (shown) { shown.hidden = true; buttons(shown.id.slice(2)).forEach((b) => b.setAttribute('aria-expanded', 'false')); }
    d.hidden = false; empty.hidden = true; shown = d;
    buttons(id).forEach((b) => b.setAttribute('aria-expanded', 'true'));
    if (user) {
      try { history.replaceState(null, '', '#' + id); } catch (e) { /* some file:// setups refuse */ }
      if (narrow.matches) panel.scrollIntoView({ block: 'start' });
    }
    if (focus) document.getElementById('h-' + id).focus();
    return true;
  }
  function close(focusBack) {
    if (!shown) return;
    const id = shown.id.slice(2);
    shown.hidden = true; empty.hidden = false; shown = null;
    buttons(id).forEach((b) => b.setAttribute('aria-expanded', 'false'));
    try { history.replaceState(null, '', location.pathname + location.search); } catch (e) { /* ignore */ }
    if (focusBack) { const b = document.getElementById('b-' + id); if (b) b.focus(); }
  }
  document.addEventListener('click', (e) => {
    const t = e.target instanceof Element ? e.target : null;
    if (!t) return;
    const x = t.closest('[data-close]');
    if (x) { close(true); return; }
    const c = t.closest('[data-cell]');
    if (c && select(c.getAttribute('data-cell'), e.detail === 0 || c.tagName === 'A', true)) e.preventDefault();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && shown) { close(true); return; }
    const t = e.target instanceof Element ? e.target.closest('table.matrix button[data-r]') : null;
    if (!t) return;
    const d = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[e.key];
    if (!d) return;
    const r = Number(t.getAttribute('data-r')) + d[0];
    const c = Number(t.getAttribute('data-c')) + d[1];
    const next = t.closest('table').querySelector('button[data-r="' + r + '"][data-c="' + c + '"]');
    if (next) { next.focus(); e.preventDefault(); }
  });
  window.addEventListener('hashchange', () => select(location.hash.slice(1), false, true));
  // a cell named in the URL, else the first cell that needs a look (without scrolling to it)
  if (!select(location.hash.slice(1), false, false)) {
    const first = document.querySelector('table.matrix button.mismatch, table.matrix button.error');
    if (first) select(first.getAttribute('data-cell'), false, false);
  }
})();`;

const SCRIPT_HASH = createHash('sha256').update(JS).digest('base64');

export function renderHtml(report: Report, opts: HtmlOptions = {}): string {
  const observe = report.options.observe === true;
  const agents: Array<AgentReport | null> = report.agents.length ? report.agents : [null];
  const tries = new Map<string, Attempt[]>();
  for (const t of opts.attempts ?? []) {
    const k = key(t.agent, t.a, t.b);
    tries.set(k, [...(tries.get(k) ?? []), t]);
  }
  for (const list of tries.values()) list.sort((x, y) => x.try - y.try);
  const comparison = opts.comparison ?? report.baseline;
  const changes = new Map((comparison?.cells ?? []).map((c) => [key(c.agent, c.a, c.b), c] as const));
  const ctx: Ctx = { report, observe, agents, tries, changes, comparison, nat: new Map(report.natTypes.map((n) => [n.name, n])), ids: new Map() };
  const cellsInOrder: Array<{ c: Cell; id: string }> = [];
  agents.forEach((agent, ai) => {
    report.rows.forEach((a, ri) => report.cols.forEach((b, ci) => {
      const c = cellAt(report, a, b, agent?.name);
      if (!c) return;
      const id = `c${ai}-${ri}-${ci}`;
      ctx.ids.set(key(agentName(ctx, agent), a, b), id);
      cellsInOrder.push({ c, id });
    }));
  });

  const several = report.agents.length > 1;
  const share = shardText(report);
  const rounds = adaptiveText(report);
  const pairings = report.rows.length * report.cols.length;
  const { host, options } = report;
  const iso = isolationLine(report);
  const title = `natmatrix: ${report.scenario} — ${summaryText(report.summary, observe, several ? 'cell' : 'pairing')}`;
  const csp = `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'`;

  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="generator" content="${`natmatrix ${report.version}`}">
<title>${title}</title>
<style>${new Raw(CSS)}</style>
</head>
<body>
<a class="skip" href="#matrices">Skip to the matrix</a>
<header>
<h1><span class="tool">natmatrix:</span> ${report.scenario}</h1>
<p class="desc">${report.description}</p>
${verdictBadge(report, observe)}
<dl class="facts">
<div><dt>run</dt><dd><code>${report.runId}</code></dd></div>
<div><dt>started</dt><dd>${report.startedAt}</dd></div>
<div><dt>duration</dt><dd>${seconds(report.durationMs)}</dd></div>
<div><dt>plan</dt><dd>${`${report.rows.length}×${report.cols.length} pairings × ${options.tries}${options.adaptive ? '+' : ''} tries${several ? ` × ${report.agents.length} agents` : ''}`}</dd></div>
${share ? html`<div><dt>part</dt><dd>${share}</dd></div>` : ''}
${rounds ? html`<div><dt>rounds</dt><dd>${rounds}</dd></div>` : ''}
<div><dt>options</dt><dd>${`timeout ${options.timeoutMs} ms · jobs ${options.jobs}${observe ? ' · observe only' : ''} · internet depth ${report.isolation.internetHops ?? 0} routers`}</dd></div>
<div><dt>host</dt><dd>${`kernel ${host.kernel} · nft ${host.nft} · iproute2 ${host.iproute2} · conntrack ${host.conntrack} · node ${host.node} · ${plural(host.cpus, 'cpu')}`}</dd></div>
<div><dt>natmatrix</dt><dd>${report.version}</dd></div>
<div><dt>run folder</dt><dd><code>${report.outDir}</code></dd></div>
</dl>
${report.agents.length ? html`<ul class="agents">${report.agents.map((x) => {
    const traits = agentTraits(x);
    return html`<li>agent <strong>${x.name}</strong>${x.description ? ` — ${x.description}` : ''} (<code>${x.source}</code>)${traits ? ` · ${traits}` : ''}${x.strategy ? ` · strategy ${x.strategy.join(' → ')}` : ''}</li>`;
  })}</ul>` : ''}
${iso ? html`<p class="warn">${iso}</p>` : ''}
</header>
<div class="wrap">
<main id="matrices" tabindex="-1">
${needsALook(ctx)}
${legend(ctx)}
${agents.map((agent, ai) => {
    const s = agent?.summary ?? report.summary;
    return html`<section class="agent" aria-labelledby="${`m-${ai}`}"><h2 id="${`m-${ai}`}">${several && agent ? `Agent ${agent.name}` : 'Matrix'} <span class="muted">· ${summaryText(s, observe)}</span></h2>${several && agent?.description ? html`<p class="meta">${agent.description}</p>` : ''}${matrix(ctx, agent)}${s.rescued.length ? html`<p class="meta">${`Fallback: ${s.rescued.map((r) => `${r.path} rescued ${r.cells} of ${plural(r.of, 'cell')}`).join(' · ')}`}</p>` : ''}</section>`;
  })}
${agentsDiffer(ctx)}
${baseDiff(ctx)}
${distributions(ctx)}
<p class="muted noprint">${`${plural(pairings, 'pairing')} per agent. Click a cell (or Tab to it and press Enter; arrow keys move between cells) for its tries, interval, reasons and evidence. Evidence links are relative to the run folder: open this file from there.`}</p>
</main>
<aside class="panel" id="panel" aria-labelledby="panel-h" aria-live="polite">
<h2 id="panel-h">Cell details</h2>
<p id="panel-empty" class="muted">Select a cell to see its tries, its 95 % interval, time-to-direct, reasons and a link to its evidence.</p>
${cellsInOrder.map(({ c, id }) => detail(ctx, c, id))}
</aside>
</div>
<footer>${`natmatrix ${report.version} · report.html of run ${report.runId} · report.json holds the same data`}</footer>
<script>${new Raw(JS)}</script>
</body>
</html>
`;
  return page.s;
}
