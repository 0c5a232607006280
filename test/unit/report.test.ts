import test from 'ava';
import { judgeCell, satisfies, wilson } from '../../harness/judge.ts';
import { cellAt, progressLine, renderJson, renderMarkdown, renderSummary, renderTerminal, summarize, summaryLinks } from '../../harness/report.ts';
import { outcomeOfPath, type AgentExit, type Attempt, type Cell, type Expected, type Outcome, type Report } from '../../harness/types.ts';

// ---------------------------------------------------------------------------------------------
// fixture builders

type CellSpec = Pick<Cell, 'a' | 'b'> & { expected: Expected } & Partial<Omit<Cell, 'expected'>>;

const outcomeOf = (e: Expected): Outcome => (e === 'failed' || e === 'direct' || e === 'relayed' ? e : outcomeOfPath(e));

/** A cell whose counts default to "all tries went `outcome`" and whose match is derived. */
function cell(spec: CellSpec): Cell {
  const tries = spec.tries ?? 3;
  const outcome = spec.outcome ?? outcomeOf(spec.expected);
  const connected = outcome === 'direct' || outcome === 'relayed';
  const path = spec.path !== undefined ? spec.path : connected ? (outcome === 'relayed' ? 'relayed' : ['direct', 'failed'].includes(spec.expected) ? 'direct-udp' : spec.expected) : null;
  const successes = spec.successes ?? (connected ? tries : 0);
  const errors = spec.errors ?? (outcome === 'error' ? 1 : 0);
  return {
    agent: '',
    outcome,
    tries,
    successes,
    failures: tries - successes - errors,
    errors,
    flaky: false,
    path,
    paths: path === null ? {} : { [path]: successes },
    timeToDirectMs: successes > 0 ? { median: 100 + successes, max: 200.25, samples: [100 + successes] } : { median: null, max: null, samples: [] },
    successRate: wilson(successes, tries),
    match: satisfies(spec.expected, outcome, path),
    reasons: successes === tries ? [] : ['no direct path within 5000 ms'],
    notes: [],
    evidence: `cells/${spec.a}__${spec.b}`,
    ...spec,
  };
}

function report(rows: string[], cols: string[], cells: Cell[], strategy: string[] | null = null): Report {
  return {
    tool: 'natmatrix',
    version: '0.1.0',
    scenario: 'rfc4787',
    description: 'classic NAT behaviours',
    runId: '20250101-120000-abcd',
    startedAt: '2025-01-01T12:00:00.000Z',
    durationMs: 12_345,
    host: { kernel: '6.8.0-40-generic', nft: 'v1.0.9', iproute2: '6.1.0', conntrack: '1.4.8', node: 'v20.20.2', cpus: 8 },
    options: { tries: 3, timeoutMs: 5000, jobs: 4, observe: false },
    strategy,
    natTypes: [],
    rows,
    cols,
    cells,
    agents: [],
    comparison: [],
    isolation: { enforced: true, crossLaneDrops: {}, internetHops: 8, lowTtlDrops: 0 },
    summary: summarize(cells, strategy),
    outDir: '/tmp/runs/20250101-120000-abcd',
  };
}

const COLS = ['full-cone', 'port-restricted', 'symmetric'];
const want = (b: string): Expected => (b === 'symmetric' ? 'failed' : 'direct');

/** 1×3, every cell as expected. */
const allMatched = report(
  ['full-cone'],
  COLS,
  COLS.map((b) => cell({ a: 'full-cone', b, expected: want(b) })),
);

/** 2×2 with two mismatches, one of them carrying a reason with a pipe in it. */
const withMismatch = report(
  ['symmetric', 'full-cone'],
  ['port-restricted', 'full-cone'],
  [
    cell({ a: 'symmetric', b: 'port-restricted', expected: 'failed', outcome: 'direct' }),
    cell({ a: 'symmetric', b: 'full-cone', expected: 'direct' }),
    cell({
      a: 'full-cone',
      b: 'port-restricted',
      expected: 'direct',
      outcome: 'failed',
      reasons: ['timeout | peer never answered'],
    }),
    cell({ a: 'full-cone', b: 'full-cone', expected: 'direct' }),
  ],
);

/** 1×3 with an error cell and a flaky-but-matched cell. */
const withErrorAndFlaky = report(['symmetric'], COLS, [
  cell({ a: 'symmetric', b: 'full-cone', expected: 'direct', outcome: 'error', successes: 1, errors: 1, flaky: true, reasons: ['agent b crashed'] }),
  cell({ a: 'symmetric', b: 'port-restricted', expected: 'direct', successes: 2, flaky: true }),
  cell({ a: 'symmetric', b: 'symmetric', expected: 'failed' }),
]);

// ---------------------------------------------------------------------------------------------
// helpers for reading renderings back

const ESC = '\u001b[';
const stripAnsi = (s: string): string => s.replace(/\u001b\[[0-9;]*m/g, '');
const displayWidth = (s: string): number => [...stripAnsi(s)].length;

/** The matrix block of a terminal rendering: header, rule, one line per row. */
function matrixLines(text: string, rows: number): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('A \\ B'));
  if (start < 0) throw new Error('no matrix header');
  return lines.slice(start, start + 2 + rows);
}

/** Text of the terminal matrix at (row name, column name), located by the header's column start. */
function termCell(text: string, r: Report, a: string, b: string): string {
  const lines = matrixLines(text, r.rows.length);
  const header = lines[0]!;
  const j = r.cols.indexOf(b);
  const starts = r.cols.map((c) => header.indexOf(`  ${c}`) + 2);
  const from = starts[j]!;
  const to = j + 1 < starts.length ? starts[j + 1]! - 2 : undefined;
  const line = lines[2 + r.rows.indexOf(a)]!;
  return line.slice(from, to).trimEnd();
}

/** Parse the first GFM table following `after` into rows of trimmed cells (separator row dropped). */
function mdTable(md: string, startsWith: string): string[][] {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => l.startsWith(startsWith));
  if (start < 0) throw new Error(`no table starting with ${startsWith}`);
  const out: string[][] = [];
  for (let i = start; i < lines.length && lines[i]!.startsWith('|'); i++) {
    const cells = lines[i]!.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    if (i === start + 1) {
      cells.forEach((c) => { if (c !== '---') throw new Error(`bad separator ${lines[i]}`); });
      continue;
    }
    out.push(cells);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// summarize / cellAt / json

test('summarize counts cells, matches, mismatches, errors and flakes', (t) => {
  t.deepEqual(summarize(allMatched.cells), { cells: 3, matched: 3, mismatched: 0, errored: 0, flaky: 0, paths: { 'direct-udp': 2 }, rescued: [] });
  t.deepEqual(summarize(withMismatch.cells), { cells: 4, matched: 2, mismatched: 2, errored: 0, flaky: 0, paths: { 'direct-udp': 3 }, rescued: [] });
  t.deepEqual(summarize(withErrorAndFlaky.cells), { cells: 3, matched: 2, mismatched: 1, errored: 1, flaky: 2, paths: { 'direct-udp': 1 }, rescued: [] });
  t.deepEqual(summarize([]), { cells: 0, matched: 0, mismatched: 0, errored: 0, flaky: 0, paths: {}, rescued: [] });
});

test('cellAt finds by (a, b), not (b, a)', (t) => {
  t.is(cellAt(withMismatch, 'symmetric', 'port-restricted')?.outcome, 'direct');
  t.is(cellAt(withMismatch, 'full-cone', 'port-restricted')?.outcome, 'failed');
  t.is(cellAt(withMismatch, 'port-restricted', 'symmetric'), undefined);
});

test('renderJson is pretty JSON with a trailing newline that round-trips', (t) => {
  const json = renderJson(withMismatch);
  t.true(json.endsWith('}\n'));
  t.true(json.includes('\n  "scenario": "rfc4787",\n'));
  t.deepEqual(JSON.parse(json), withMismatch);
});

// ---------------------------------------------------------------------------------------------
// terminal

test('terminal: heading names scenario, description, size, duration and run folder', (t) => {
  const first = renderTerminal(allMatched, { color: false }).split('\n')[0]!;
  t.true(first.includes('rfc4787'));
  t.true(first.includes('classic NAT behaviours'));
  t.true(first.includes('3 pairings × 3 tries'));
  t.true(first.includes('12.3s'));
  t.true(first.includes('/tmp/runs/20250101-120000-abcd'));
});

test('terminal: all-matched 1×3 matrix has counts in the right columns and no crosses', (t) => {
  const text = renderTerminal(allMatched, { color: false });
  const lines = matrixLines(text, 1);
  t.regex(lines[0]!, /^A \\ B\s+full-cone\s+port-restricted\s+symmetric\s*$/);
  t.regex(lines[2]!, /^full-cone\s/);
  t.is(termCell(text, allMatched, 'full-cone', 'full-cone'), '3/3 ✓');
  t.is(termCell(text, allMatched, 'full-cone', 'port-restricted'), '3/3 ✓');
  t.is(termCell(text, allMatched, 'full-cone', 'symmetric'), '0/3 ✓');
  t.false(matrixLines(text, 1).join('\n').includes('✗'));
  t.false(text.split('\n').some((l) => l.startsWith('✗')), 'no mismatch lines');
  t.false(matrixLines(text, 1).join('\n').includes('want'));
  t.true(text.includes('\n3/3 cells as expected\n'));
  t.true(text.includes('median time-to-direct: 103.0 ms'));
});

test('terminal: every matrix line has the same display width', (t) => {
  for (const r of [allMatched, withMismatch, withErrorAndFlaky]) {
    for (const color of [false, true]) {
      const widths = matrixLines(renderTerminal(r, { color }), r.rows.length).map(displayWidth);
      t.is(new Set(widths).size, 1, `${r.rows.join(',')} color=${color}: ${widths.join(',')}`);
    }
  }
});

test('terminal: mismatches get ✗ and the expected outcome, only on those cells', (t) => {
  const text = renderTerminal(withMismatch, { color: false });
  t.is(termCell(text, withMismatch, 'symmetric', 'port-restricted'), '3/3 ✗ want failed');
  t.is(termCell(text, withMismatch, 'symmetric', 'full-cone'), '3/3 ✓');
  t.is(termCell(text, withMismatch, 'full-cone', 'port-restricted'), '0/3 ✗ want direct');
  t.is(termCell(text, withMismatch, 'full-cone', 'full-cone'), '3/3 ✓');
  const matrixCrosses = matrixLines(text, 2).join('\n').split('✗').length - 1;
  t.is(matrixCrosses, 2);

  t.true(text.includes('\n2/4 cells as expected\n'));
  const lines = text.split('\n');
  const i = lines.indexOf('✗ symmetric × port-restricted: expected failed, got direct via direct-udp (3/3)');
  t.true(i > 0);
  t.is(lines[i + 1], '    evidence: /tmp/runs/20250101-120000-abcd/cells/symmetric__port-restricted');
  const k = lines.indexOf('✗ full-cone × port-restricted: expected direct, got failed (0/3)');
  t.true(k > i, 'mismatch lines follow matrix order');
  t.is(lines[k + 1], '    timeout | peer never answered');
  t.is(lines[k + 2], '    evidence: /tmp/runs/20250101-120000-abcd/cells/full-cone__port-restricted');
  t.is(lines.at(-2), 'median time-to-direct: 103.0 ms');
});

test('terminal: error cells show ERR and flaky cells ~', (t) => {
  const text = renderTerminal(withErrorAndFlaky, { color: false });
  t.is(termCell(text, withErrorAndFlaky, 'symmetric', 'full-cone'), 'ERR 1/3 ✗~');
  t.is(termCell(text, withErrorAndFlaky, 'symmetric', 'port-restricted'), '2/3 ✓~');
  t.is(termCell(text, withErrorAndFlaky, 'symmetric', 'symmetric'), '0/3 ✓');
  t.true(text.includes('\n2/3 cells as expected (1 errored, 2 flaky)\n'));
  t.true(text.includes('✗ symmetric × full-cone: expected direct, got error (1/3)\n    agent b crashed\n'));
  // medians 101 and 102 -> 101.5
  t.true(text.endsWith('median time-to-direct: 101.5 ms\n'));
});

test('terminal: median time-to-direct is n/a without direct tries', (t) => {
  const r = report(['symmetric'], ['symmetric'], [cell({ a: 'symmetric', b: 'symmetric', expected: 'failed' })]);
  t.true(renderTerminal(r, { color: false }).endsWith('median time-to-direct: n/a\n'));
});

test('terminal: color=false has no ANSI escapes; color=true colours cells by status', (t) => {
  for (const r of [allMatched, withMismatch, withErrorAndFlaky]) {
    t.false(renderTerminal(r, { color: false }).includes(ESC));
  }
  const green = renderTerminal(allMatched, { color: true });
  t.true(green.includes(`${ESC}32m3/3 ✓`), 'matched direct is green');
  t.true(green.includes(`${ESC}2m0/3 ✓`), 'matched failed is dim');
  const red = renderTerminal(withMismatch, { color: true });
  t.true(red.includes(`${ESC}31m0/3 ✗ want direct`), 'mismatch is red');
  const yellow = renderTerminal(withErrorAndFlaky, { color: true });
  t.true(yellow.includes(`${ESC}33mERR 1/3 ✗~`), 'error is yellow');
  t.true(yellow.includes(`${ESC}33m2/3 ✓~`), 'flaky is yellow');
  // colour adds escapes only; the visible text is identical
  for (const r of [allMatched, withMismatch, withErrorAndFlaky]) {
    t.is(stripAnsi(renderTerminal(r, { color: true })), renderTerminal(r, { color: false }));
  }
});

// ---------------------------------------------------------------------------------------------
// markdown

test('markdown: heading and one-sentence result', (t) => {
  const ok = renderMarkdown(allMatched);
  t.true(ok.startsWith('## natmatrix: rfc4787\n'));
  t.true(ok.includes('✅ all 3 pairings as expected'));
  t.false(ok.includes('❌'));
  t.true(renderMarkdown(withMismatch).includes('❌ 2 of 4 pairings differ from expectation'));
  t.true(renderMarkdown(withErrorAndFlaky).includes('❌ 1 of 3 pairings differ from expectation (1 errored, 2 flaky)'));
});

test('markdown: matrix table has rows A × columns B with ✅/❌ in the right cells', (t) => {
  const m = mdTable(renderMarkdown(withMismatch), '| A \\ B');
  t.is(m.length, 1 + 2); // header + 2 rows
  t.deepEqual(m[0], ['A \\ B', 'port-restricted', 'full-cone']);
  t.deepEqual(m[1], ['**symmetric**', '❌ 3/3 direct-udp (want failed)', '✅ 3/3 direct-udp']);
  t.deepEqual(m[2], ['**full-cone**', '❌ 0/3 failed (want direct)', '✅ 3/3 direct-udp']);

  const e = mdTable(renderMarkdown(withErrorAndFlaky), '| A \\ B');
  t.deepEqual(e[1], ['**symmetric**', '⚠️ error 1/3 (flaky)', '✅ 2/3 direct-udp (flaky)', '✅ 0/3 failed']);
});

test('markdown: details table has one row per cell, escaped pipes, links only for noteworthy cells', (t) => {
  const md = renderMarkdown(withMismatch);
  const d = mdTable(md, '| A | B |');
  t.is(d.length, 1 + 4);
  const head = d[0]!;
  t.is(head.length, 12);
  const col = (name: string): number => head.indexOf(name);
  const byPair = (a: string, b: string): string[] => d.find((r) => r[0] === a && r[1] === b)!;

  const bad = byPair('full-cone', 'port-restricted');
  t.is(bad[col('expected')], 'direct');
  t.is(bad[col('outcome')], 'failed');
  t.is(bad[col('connected/tries')], '0/3');
  t.is(bad[col('match')], '❌');
  t.is(bad[col('time-to-direct median / max (ms)')], '–');
  t.is(bad[col('reasons')], 'timeout \\| peer never answered');
  t.is(bad[col('evidence')], '[cells/full-cone__port-restricted](cells/full-cone__port-restricted)');
  t.true(md.includes('timeout \\| peer never answered'));
  t.false(md.includes('timeout | peer'));

  const good = byPair('symmetric', 'full-cone');
  t.is(good[col('match')], '✅');
  t.is(good[col('time-to-direct median / max (ms)')], '103.0 / 200.3');
  t.is(good[col('evidence')], '–');

  // exactly the two mismatched cells are linked
  t.is(md.split('](cells/').length - 1, 2);
  t.true(md.includes('](cells/symmetric__port-restricted)'));
  t.false(md.includes('](cells/full-cone__full-cone)'));
});

test('markdown: failed, error and flaky cells link evidence even when matched', (t) => {
  const md = renderMarkdown(withErrorAndFlaky);
  t.true(md.includes('](cells/symmetric__full-cone)'), 'error');
  t.true(md.includes('](cells/symmetric__port-restricted)'), 'flaky');
  t.true(md.includes('](cells/symmetric__symmetric)'), 'matched failed');
  const all = renderMarkdown(allMatched);
  t.is(all.split('](cells/').length - 1, 1, 'only the matched-failed symmetric cell');
  t.true(all.includes('](cells/full-cone__symmetric)'));
});

test('markdown: host, options and run facts', (t) => {
  const md = renderMarkdown(allMatched);
  const h = mdTable(md, '| kernel |');
  t.deepEqual(h, [
    ['kernel', 'nft', 'iproute2', 'conntrack', 'node', 'cpus'],
    ['6.8.0-40-generic', 'v1.0.9', '6.1.0', '1.4.8', 'v20.20.2', '8'],
  ]);
  t.true(md.includes('tries 3, timeout 5000 ms, jobs 4'));
  t.true(md.includes('`20250101-120000-abcd`'));
  t.true(md.includes('2025-01-01T12:00:00.000Z'));
  t.true(md.includes('duration: 12.3s'));
});

test('markdown: success rate with its Wilson interval, and long reason lists cut to the first', (t) => {
  const c = cell({ a: 'symmetric', b: 'port-restricted', expected: 'failed', tries: 3, reasons: ['first reason', 'second', 'third'] });
  const md = renderMarkdown(report(['symmetric'], ['port-restricted'], [c]));
  t.regex(md, /\| 0\/3 \| 0 % \(0–56 %\) \|/);
  t.regex(md, /\| first reason \(\+2 more in report\.json\) \|/);
  t.notRegex(md, /second/);
});


test('progress line: done/total, elapsed and a linear ETA', (t) => {
  t.is(progressLine(10, 40, 2500), '  10/40 tries · 2.5 s elapsed · ETA 7.5 s');
  t.is(progressLine(0, 40, 100), '  0/40 tries · 0.1 s elapsed · ETA –');
  t.is(progressLine(40, 40, 9000), '  40/40 tries · 9.0 s elapsed · ETA 0.0 s');
});

// ---------------------------------------------------------------------------------------------
// paths and fallback

/** The fallback scenario's shape: UDP wins most cells, TCP rescues one, the relay two. */
const FALLBACK = ['direct-udp', 'direct-tcp', 'relayed'];
const withFallback = report(
  ['port-restricted', 'symmetric'],
  ['port-restricted', 'symmetric'],
  [
    cell({ a: 'port-restricted', b: 'port-restricted', expected: 'direct-udp' }),
    cell({ a: 'port-restricted', b: 'symmetric', expected: 'relayed' }),
    cell({ a: 'symmetric', b: 'port-restricted', expected: 'direct-tcp' }),
    cell({ a: 'symmetric', b: 'symmetric', expected: 'relayed', outcome: 'failed' }),
  ],
  FALLBACK,
);

test('summarize: cells per path, and how many cells each fallback step rescued of those it reached', (t) => {
  const s = withFallback.summary;
  t.deepEqual(s.paths, { 'direct-udp': 1, relayed: 1, 'direct-tcp': 1 });
  // UDP failed 3 cells; TCP won 1 of them; the relay won 1 of the 2 TCP left (the last failed outright)
  t.deepEqual(s.rescued, [
    { path: 'direct-tcp', cells: 1, of: 3 },
    { path: 'relayed', cells: 1, of: 2 },
  ]);
  t.deepEqual(summarize(withFallback.cells).rescued, [], 'no strategy, no rescue counts');
});

test('terminal and markdown show the path that won each cell, and the rescue counts', (t) => {
  const text = renderTerminal(withFallback, { color: false });
  t.is(termCell(text, withFallback, 'port-restricted', 'port-restricted'), '3/3 U ✓');
  t.is(termCell(text, withFallback, 'symmetric', 'port-restricted'), '3/3 T ✓');
  t.is(termCell(text, withFallback, 'port-restricted', 'symmetric'), '3/3 R ✓');
  t.is(termCell(text, withFallback, 'symmetric', 'symmetric'), '0/3 ✗ want relayed');
  t.true(text.includes('path that won: U direct-udp · T direct-tcp · R relayed'), text);
  t.true(text.includes('fallback: direct-tcp rescued 1 of 3 cells (33 %) · relayed rescued 1 of 2 cells (50 %)'), text);
  const coloured = renderTerminal(withFallback, { color: true });
  t.true(coloured.includes(`${ESC}36m3/3 R ✓`), 'relayed cells are cyan');

  const md = renderMarkdown(withFallback);
  const m = mdTable(md, '| A \\ B');
  t.deepEqual(m[1], ['**port-restricted**', '✅ 3/3 direct-udp', '🔁 3/3 relayed']);
  t.deepEqual(m[2], ['**symmetric**', '✅ 3/3 direct-tcp', '❌ 0/3 failed (want relayed)']);
  t.true(md.includes('Strategy: direct-udp → direct-tcp → relayed. Fallback: direct-tcp rescued 1 of 3 cells (33 %)'), md);
});

test('a cell expecting a path matches only when that path won', (t) => {
  t.true(satisfies('direct-tcp', 'direct', 'direct-tcp'));
  t.false(satisfies('direct-tcp', 'direct', 'direct-udp'));
  t.true(satisfies('direct', 'direct', 'direct-tcp'), '"direct" takes any direct path');
  t.false(satisfies('direct', 'relayed', 'relayed'), 'a relayed connection is not direct');
  t.true(satisfies('relayed', 'relayed', 'relayed'));
  t.false(satisfies('matconnect', 'failed', null));
});

test('an error cell whose first try failed cleanly shows the error, not the clean failure, in terminal and markdown', (t) => {
  const base = { agent: 'udp-punch', cell: 0, a: 'symmetric', b: 'full-cone', lane: 0, path: null, timeToDirectMs: null, notes: [] as string[], evidence: 'cells/x/try-1' };
  const exit: AgentExit = { role: 'a', exitCode: 1, signal: null, timedOut: false, stopped: false, durationMs: 1, verdict: null, verdictProblem: null, leftover: [], stderrTail: '', stdout: '', stderr: '' };
  const tries: Attempt[] = [
    { ...base, try: 1, outcome: 'failed' as const, reason: 'a: no pong within 600 ms; b: no pong within 600 ms', agents: { a: exit, b: { ...exit, role: 'b' as const } } },
    { ...base, try: 2, outcome: 'error' as const, reason: 'agent b crashed: exit code 7', agents: { a: exit, b: { ...exit, role: 'b' as const } } },
  ];
  const c = judgeCell('symmetric', 'full-cone', 'direct', tries, 'cells/x', 'udp-punch');
  const r = report(['symmetric'], ['full-cone'], [c]);
  const text = renderTerminal(r, { color: false });
  t.regex(text, /✗ symmetric × full-cone: expected direct, got error \(0\/2\)\n {4}agent b crashed: exit code 7\n/);
  const details = mdTable(renderMarkdown(r), '| A | B |');
  t.true(details[1]![10]!.startsWith('agent b crashed: exit code 7'), details[1]![10]);
});

test('isolation: cross-lane drops and unisolated lanes are said in terminal and markdown; nothing when all is well', (t) => {
  t.false(renderTerminal(allMatched, { color: false }).includes('lane'));
  t.false(renderMarkdown(allMatched).includes('isolat'));
  const leaky = { ...allMatched, isolation: { enforced: true, crossLaneDrops: { 0: 3, 4: 1 }, internetHops: 8, lowTtlDrops: 0 } };
  const line = 'lane isolation dropped 4 packets sent from one pairing\'s lane to another\'s (lanes 0, 4): an agent aimed outside its pairing';
  t.true(renderTerminal(leaky, { color: false }).includes(`\n${line}\n`));
  t.true(renderMarkdown(leaky).includes(`- ${line}\n`));
  const open = { ...allMatched, isolation: { enforced: false, crossLaneDrops: {}, internetHops: 8, lowTtlDrops: 0 } };
  const shallow = { ...allMatched, isolation: { enforced: true, crossLaneDrops: {}, internetHops: 8, lowTtlDrops: 12 } };
  t.true(renderTerminal(shallow, { color: false }).includes("the internet's depth (8 routers) dropped 12 packets sent with a TTL too low to cross it"));
  t.regex(renderTerminal(open, { color: false }), /lanes not isolated: this kernel has no nft bridge family/);
});

test('job summary: narrow matrix cells, one line per cell to look at with its evidence folder, the artifact named', (t) => {
  const md = renderSummary(withMismatch, summaryLinks('natmatrix-sym', { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'o/r', GITHUB_RUN_ID: '42' }));
  const rows = md.split('\n').filter((l) => l.startsWith('| **'));
  t.is(rows.length, 2);
  // short marks only: no reasons, no expectation text in the matrix
  for (const r of rows) for (const c of r.split(' | ').slice(1)) t.true([...c.replace(/ \|$/, '')].length <= 10, `narrow: "${c}"`);
  t.regex(md, /❌ 3\/3 U/);
  t.regex(md, /### 2 cells to look at/);
  t.regex(md, /- \*\*full-cone × port-restricted\*\*: expected direct, got failed 0\/3 — timeout \\\| peer never answered; evidence `cells\/full-cone__port-restricted\/`/);
  t.regex(md, /- \*\*symmetric × port-restricted\*\*: expected failed, got direct-udp 3\/3/);
  t.regex(md, /in the artifact `natmatrix-sym`: \[https:\/\/github.com\/o\/r\/actions\/runs\/42\]/);
  t.notRegex(md, /\]\(cells\//, 'no relative links: they lead nowhere in a job summary');
  const good = renderSummary(allMatched, summaryLinks(undefined, {}));
  t.regex(good, /✅ all 3 pairings as expected/);
  t.notRegex(good, /to look at/);
  t.regex(good, /are in the run folder\.$/m);
  t.regex(renderSummary(withErrorAndFlaky), /⚠️ 1\/3/);
});

test('job summary when observing: what happened per cell, no verdict marks', (t) => {
  const observed: Report = {
    ...allMatched,
    options: { ...allMatched.options, observe: true },
    cells: allMatched.cells.map((c) => ({ ...c, expected: null, match: true })),
  };
  const md = renderSummary(observed);
  t.regex(md, /🟢 3\/3 U/);
  t.regex(md, /⚪ 0\/3/);
  t.notRegex(md, /✅ 3\/3/);
  t.regex(md, /🟢 direct · 🔁 relayed · ⚪ failed/);
});
