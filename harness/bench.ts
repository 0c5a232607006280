// npm run bench [-- --runs N]: the performance goals (README "Performance"), measured the way a user runs
// natmatrix: a fresh `natmatrix …` process each time (the compiled harness), start-up included. For every
// case: wall time, the CPU of the whole process tree (every agent, router helper and tool it started),
// its peak memory (proportional set size summed over the tree, sampled), time-to-direct, and whether every cell came out as
// expected; then the cost of one more try (two sizes of the same sweep) and the CLI's start. Prints
// figures against the goals; asserts nothing (timings are never test assertions).
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine, refuseSwallowed, wholeNumber } from './args.ts';
import { median } from './judge.ts';
import { systemTool } from './host.ts';
import { procPids, procStat, startProc } from './proc.ts';
import { overallTimeToDirect } from './report.ts';
import { ROOT } from './scenario.ts';
import type { Attempt, Report } from './types.ts';

interface Case {
  label: string;
  args: string[];
  /** goals: wall, and for runs that report them, median time-to-direct and peak memory */
  wallGoalMs: number;
  ttdGoalMs?: number;
  rssGoalMb?: number;
}

/** A 10 × 10 sweep: the nine RFC 4787 combinations and the DMZ, five tries each (500 tries). */
function sweepScenario(dir: string): string {
  const grid = ['ei', 'ad', 'apd'].flatMap((m) => ['ei', 'ad', 'apd'].map((f) => `${m}m-${f}f`));
  const types = [...grid, 'dmz'];
  const file = join(dir, 'sweep-10x10.json');
  writeFileSync(file, JSON.stringify({ name: 'sweep-10x10', description: '10 × 10 × 5', a: types, b: types, tries: 5, timeoutMs: 600, expectModel: 'udp-punch' }));
  return file;
}

function cases(sweep: string): Case[] {
  return [
    { label: 'symmetric-vs-cone (9 tries)', args: ['scenario', 'symmetric-vs-cone'], wallGoalMs: 800, ttdGoalMs: 10, rssGoalMb: 400 },
    { label: 'full-matrix --tries 1 (25 tries)', args: ['scenario', 'full-matrix', '--tries', '1'], wallGoalMs: 1200, ttdGoalMs: 10, rssGoalMb: 400 },
    { label: 'full-matrix --tries 5 (125 tries)', args: ['scenario', 'full-matrix', '--tries', '5'], wallGoalMs: Infinity, ttdGoalMs: 10, rssGoalMb: 400 },
    { label: 'rfc4787-grid (162 tries)', args: ['scenario', 'rfc4787-grid'], wallGoalMs: 6000, ttdGoalMs: 10, rssGoalMb: 400 },
    { label: '10 × 10 × 5 sweep (500 tries)', args: ['scenario', sweep], wallGoalMs: 20_000, ttdGoalMs: 10, rssGoalMb: 400 },
    { label: 'natmatrix scenario --help', args: ['scenario', '--help'], wallGoalMs: 150 },
    { label: 'natmatrix scenario --list', args: ['scenario', '--list'], wallGoalMs: 150 },
  ];
}

/** The goal of one more try, from the two full-matrix rows: CPU and wall. */
const TRY_CPU_GOAL_MS = 50;
const TRY_WALL_GOAL_MS = 30;

interface Run {
  wallMs: number;
  cpuMs: number | null;
  peakRssMb: number;
  report: Report | null;
  exitCode: number | null;
}

/**
 * Memory of `root` and every process below it, in MiB: the sum of their proportional set sizes (Pss:
 * each shared page counted once over all the processes sharing it; summed RSS would count Node's binary
 * once per agent). One pass over /proc.
 */
function treeMemoryMb(root: number): number {
  const parent = new Map<number, number>();
  for (const pid of procPids()) {
    const stat = procStat(pid);
    if (stat) parent.set(pid, stat.ppid);
  }
  let kb = 0;
  for (const pid of parent.keys()) {
    let p: number | undefined = pid;
    while (p !== undefined && p > 1 && p !== root) p = parent.get(p);
    if (p !== root) continue;
    try {
      kb += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

async function once(args: string[], out: string | null): Promise<Run> {
  // bash reports the CPU of everything it waited for (the whole tree: each parent reaps its children)
  const argv = [process.execPath, join(ROOT, 'harness/natmatrix.mjs'), ...args, ...(out ? ['--out', out, '--no-color'] : [])];
  const t0 = performance.now();
  const proc = startProc(systemTool('bash'), ['-c', '"$@" >/dev/null; s=$?; times >&2; exit $s', 'bench', ...argv], { env: { CI: '1' } });
  let peakRssMb = 0;
  const sampler = setInterval(() => {
    if (proc.pid !== undefined) peakRssMb = Math.max(peakRssMb, treeMemoryMb(proc.pid));
  }, 100);
  const r = await proc.done;
  clearInterval(sampler);
  const wallMs = performance.now() - t0;
  // `times`: the shell's own user/sys, then its children's: "0m4.123s 0m2.001s"
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stderr.trim());
  const cpuMs = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : null;
  let report: Report | null = null;
  if (out) {
    try {
      report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    } catch {
      process.stderr.write(r.stderr);
    }
  }
  return { wallMs, cpuMs, peakRssMb, report, exitCode: r.exitCode };
}

/**
 * Sharding, simulated on one machine: the grid with `tries` tries whole, then as `shards` shards run one
 * after another (each alone, as each would run on its own runner), their merge; and the merge of 64
 * shards of the 10 × 10 sweep (its whole run split as --shard would split it).
 */
async function shardingBench(tmp: string, sweep: string, shards: number, tries: number): Promise<void> {
  const grid = ['scenario', 'rfc4787-grid', '--tries', String(tries)];
  const say = (label: string, r: Run) => process.stderr.write(`  ${label}: ${s(r.wallMs)}, exit ${r.exitCode}\n`);
  const whole = await once(grid, join(tmp, 'grid-whole'));
  say(`rfc4787-grid ×${tries} whole`, whole);
  const parts: Run[] = [];
  for (let i = 1; i <= shards; i++) {
    parts.push(await once([...grid, '--shard', `${i}/${shards}`], join(tmp, `grid-shard-${i}`)));
    say(`shard ${i}/${shards}`, parts.at(-1)!);
  }
  const merged = await once(['merge', ...Array.from({ length: shards }, (_, k) => join(tmp, `grid-shard-${k + 1}`))], join(tmp, 'grid-merged'));
  say('merge', merged);
  const same = (r: Report | null) => JSON.stringify(r?.cells.map((c) => [c.a, c.b, c.tries, c.successes, c.match]));
  const slowest = Math.max(...parts.map((r) => r.wallMs));

  // 64 shards of the 10 × 10 sweep: its whole run, split by the plan's own shard rule
  const sweepWhole = await once(['scenario', sweep], join(tmp, 'sweep-whole'));
  say('10 × 10 × 5 whole', sweepWhole);
  const dirs = await splitRun(join(tmp, 'sweep-whole'), sweep, 64, join(tmp, 'sweep-shards'));
  const merge64 = await once(['merge', ...dirs], join(tmp, 'sweep-merged'));
  say('merge of 64 shards', merge64);

  const rows = [
    ['case', 'wall'],
    [`rfc4787-grid --tries ${tries} (${whole.report?.cells.reduce((n, c) => n + c.tries, 0) ?? '?'} tries), one machine`, s(whole.wallMs)],
    [`the same as ${shards} shards, each alone: slowest / median / sum`, `${s(slowest)} / ${s(median(parts.map((r) => r.wallMs))!)} / ${s(parts.reduce((n, r) => n + r.wallMs, 0))}`],
    [`merge of the ${shards} (natmatrix merge, start-up included)`, s(merged.wallMs)],
    [`sharded estimate: slowest shard + merge (+ runner set-up, not measured here)`, `${s(slowest + merged.wallMs)} = 1/${(whole.wallMs / (slowest + merged.wallMs)).toFixed(1)} of one machine`],
    [`merged cells equal the whole run's`, same(merged.report) === same(whole.report) ? 'yes' : 'no (see the run folders)'],
    ['merge of 64 shards of the 10 × 10 × 5 sweep (500 tries, evidence copied)', `${s(merge64.wallMs)} (goal ≤ 1 s ${mark(merge64.wallMs <= 1000)})`],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** A whole run's folder as `count` shard folders, split as --shard i/count would have run it. */
async function splitRun(dir: string, scenario: string, count: number, into: string): Promise<string[]> {
  const { prepareRun } = await import('./session.ts');
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
  const attempts = JSON.parse(readFileSync(join(dir, 'attempts.json'), 'utf8')) as Attempt[];
  const dirs: string[] = [];
  for (let index = 1; index <= count; index++) {
    const { plan } = await prepareRun(scenario, { tries: report.options.tries, shard: { index, count }, jobs: 1 });
    const mine = new Set(plan.attempts.map((a) => `${a.cell}.${a.try}`));
    const own = attempts.filter((a) => mine.has(`${a.cell}.${a.try}`));
    const out = join(into, `shard-${index}`);
    mkdirSync(out, { recursive: true });
    for (const a of own) if (a.evidence && existsSync(join(dir, a.evidence))) cpSync(join(dir, a.evidence), join(out, a.evidence), { recursive: true });
    writeFileSync(join(out, 'attempts.json'), JSON.stringify(own, null, 2));
    writeFileSync(join(out, 'report.json'), JSON.stringify({ ...report, planId: plan.planId, shard: plan.shard }, null, 2));
    dirs.push(out);
  }
  return dirs;
}

const HELP = `usage: natmatrix bench [--runs N] [--sharding]      (npm run bench -- [--runs N] [--sharding])

Measures the performance goals (README "Performance") the way a user runs natmatrix: a fresh process per
run, start-up included. Per case: wall time, CPU of the whole process tree, peak memory of the tree (Pss),
time-to-direct, cells as expected; then the cost of one more try and the CLI's start. Prints figures
against the goals; asserts nothing. Needs root (sudo).

options:
  --runs N     runs per case (default 3)
  --sharding   instead: the sharded workflow simulated here — rfc4787-grid with 20 tries whole and as
               8 shards run one after another (each alone, as on its own runner), their merge, and the
               merge of 64 shards of a 10 × 10 × 5 sweep
  -h, --help   this text
  --version    print natmatrix's version`;

const s = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const mark = (ok: boolean) => (ok ? '✓' : '✗');

async function main() {
  refuseSwallowed('bench', ['runs', 'sharding']);
  const parsed = parseCommandLine({ options: { runs: { type: 'string', default: '3' }, sharding: { type: 'boolean' } }, help: HELP });
  if (!parsed) return;
  const runs = wholeNumber('runs', parsed.values.runs, 1, 1000)!;
  const tmp = mkdtempSync(join(tmpdir(), 'natmatrix-bench-'));
  if (parsed.values.sharding) {
    try {
      await shardingBench(tmp, sweepScenario(tmp), 8, 20);
    } finally {
      if (!process.env.NMX_BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
    }
    return;
  }
  const rows: string[][] = [['case', 'wall median (min–max)', 'goal', 'CPU (tree)', 'peak memory (tree, Pss)', 'ttd median', 'as expected']];
  const medians = new Map<string, { wall: number; cpu: number | null }>();
  let allMet = true;
  try {
    for (const c of cases(sweepScenario(tmp))) {
      const done: Run[] = [];
      for (let i = 0; i < runs; i++) {
        const scenario = c.args[1] !== '--help' && c.args[1] !== '--list';
        const r = await once(c.args, scenario ? join(tmp, `${medians.size}-${i}`) : null);
        done.push(r);
        process.stderr.write(`  ${c.label} run ${i + 1}/${runs}: ${s(r.wallMs)}, CPU ${r.cpuMs === null ? '?' : s(r.cpuMs)}, exit ${r.exitCode}\n`);
      }
      const walls = done.map((r) => r.wallMs);
      const wall = median(walls)!;
      const cpus = done.flatMap((r) => (r.cpuMs === null ? [] : [r.cpuMs]));
      const cpu = median(cpus);
      medians.set(c.label, { wall, cpu });
      const reports = done.flatMap((r) => (r.report ? [r.report] : []));
      const ttd = median(reports.flatMap((r) => overallTimeToDirect(r.cells) ?? []));
      const rss = Math.max(...done.map((r) => r.peakRssMb));
      const expected = done.filter((r) => r.exitCode === 0).length;
      const wallOk = wall <= c.wallGoalMs;
      const ttdOk = c.ttdGoalMs === undefined || (ttd !== null && ttd <= c.ttdGoalMs);
      const rssOk = c.rssGoalMb === undefined || rss <= c.rssGoalMb;
      allMet &&= wallOk && ttdOk && rssOk && expected === runs;
      rows.push([
        c.label,
        `${s(wall)} (${s(Math.min(...walls))}–${s(Math.max(...walls))})`,
        Number.isFinite(c.wallGoalMs) ? `≤ ${s(c.wallGoalMs)} ${mark(wallOk)}` : '—',
        cpu === null ? '?' : s(cpu),
        c.rssGoalMb === undefined ? '—' : `${Math.round(rss)} MB ≤ ${c.rssGoalMb} ${mark(rssOk)}`,
        c.ttdGoalMs === undefined ? '—' : ttd === null ? 'n/a' : `${ttd.toFixed(1)} ms ≤ ${c.ttdGoalMs} ${mark(ttdOk)}`,
        `${expected}/${runs}`,
      ]);
    }
    // one more try: the 100 tries between full-matrix ×1 and ×5
    const one = medians.get('full-matrix --tries 1 (25 tries)')!;
    const five = medians.get('full-matrix --tries 5 (125 tries)')!;
    const wallPerTry = (five.wall - one.wall) / 100;
    const cpuPerTry = one.cpu !== null && five.cpu !== null ? (five.cpu - one.cpu) / 100 : null;
    allMet &&= wallPerTry <= TRY_WALL_GOAL_MS && cpuPerTry !== null && cpuPerTry <= TRY_CPU_GOAL_MS;
    rows.push([
      'one more try (full-matrix ×5 − ×1, ÷ 100)',
      `${wallPerTry.toFixed(1)} ms wall`,
      `≤ ${TRY_WALL_GOAL_MS} ms ${mark(wallPerTry <= TRY_WALL_GOAL_MS)}`,
      cpuPerTry === null ? '?' : `${cpuPerTry.toFixed(1)} ms ≤ ${TRY_CPU_GOAL_MS} ${mark(cpuPerTry <= TRY_CPU_GOAL_MS)}`,
      '—',
      '—',
      '—',
    ]);
  } finally {
    if (!process.env.NMX_BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  console.log(
    `\nmachine: ${availableParallelism()} cores; ${runs} run(s) per case; wall and CPU: the whole \`natmatrix\` process tree, start-up included ` +
      '(CPU: user + system of every process it started); peak memory: Pss summed over the tree (shared pages counted once), sampled every 100 ms; ttd: median time-to-direct of the direct tries',
  );
  console.log(allMet ? 'all goals met' : 'some goal missed');
}

main().catch((e: unknown) => {
  process.stderr.write(`natmatrix bench: ${(e as Error).message}\n`);
  process.exit(2);
});
