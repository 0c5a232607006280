// npm run bench [-- --runs N]: time whole scenario runs end to end, Node start-up included, the way a
// user runs them (a fresh `natmatrix scenario …` process each time: the compiled harness), and compare the
// medians with the targets. Prints figures; asserts nothing (timings are never test assertions).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine, refuseSwallowed, wholeNumber } from './args.ts';
import { median } from './judge.ts';
import { startProc } from './proc.ts';
import { overallTimeToDirect } from './report.ts';
import { ROOT } from './scenario.ts';
import type { Report } from './types.ts';

interface Case {
  scenario: string;
  args: string[];
  wallTargetMs: number;
}

const CASES: Case[] = [
  { scenario: 'symmetric-vs-cone', args: [], wallTargetMs: 2000 },
  { scenario: 'full-matrix', args: ['--tries', '1'], wallTargetMs: 5000 },
  // the same agent twice on one lab: two agents cost about two runs' tries, not more (compare with the
  // first row: the lab is built once)
  {
    scenario: 'symmetric-vs-cone',
    args: ['--agent', `one=${join(ROOT, 'agents/udp-punch/natmatrix-agent.json')}`, '--agent', `two=${join(ROOT, 'agents/udp-punch/natmatrix-agent.json')}`],
    wallTargetMs: 4000,
  },
];

/** "--agent ts=/…/natmatrix-agent.json" → "--agent ts=…" in the table */
const shown = (args: string[]) => args.map((a) => a.replace(/=.*\//, '=…/')).join(' ');
const TTD_TARGET_MS = 60;

async function once(c: Case, out: string): Promise<{ wallMs: number; report: Report | null; exitCode: number | null }> {
  const t0 = performance.now();
  const r = await startProc(process.execPath, [join(ROOT, 'harness/natmatrix.mjs'), 'scenario', c.scenario, ...c.args, '--out', out, '--no-color'], {
    env: { CI: '1' },
  }).done;
  const wallMs = performance.now() - t0;
  let report: Report | null = null;
  try {
    report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
  } catch {
    process.stderr.write(r.stderr);
  }
  return { wallMs, report, exitCode: r.exitCode };
}

const HELP = `usage: natmatrix bench [--runs N]      (npm run bench -- [--runs N])

Times whole scenario runs end to end (a fresh natmatrix process each, start-up included) and compares
the medians with the targets. Prints figures; asserts nothing. Needs root (sudo).

options:
  --runs N     runs per scenario (default 5)
  -h, --help   this text
  --version    print natmatrix's version`;

async function main() {
  refuseSwallowed('bench', ['runs']);
  const parsed = parseCommandLine({ options: { runs: { type: 'string', default: '5' } }, help: HELP });
  if (!parsed) return;
  const { values } = parsed;
  const runs = wholeNumber('runs', values.runs, 1, 1000)!;
  const tmp = mkdtempSync(join(tmpdir(), 'natmatrix-bench-'));
  const rows: string[][] = [['scenario', 'runs', 'wall median', 'min', 'max', 'target', 'ttd median', 'ttd max', 'all as expected']];
  let allMet = true;
  try {
    for (const c of CASES) {
      const walls: number[] = [];
      const ttds: number[] = [];
      let ttdMax = 0;
      let expected = 0;
      for (let i = 0; i < runs; i++) {
        const r = await once(c, join(tmp, `${c.scenario}-${CASES.indexOf(c)}-${i}`));
        walls.push(r.wallMs);
        if (r.report) {
          const t = overallTimeToDirect(r.report.cells);
          if (t !== null) ttds.push(t);
          for (const cell of r.report.cells) ttdMax = Math.max(ttdMax, cell.timeToDirectMs.max ?? 0);
          if (r.exitCode === 0) expected++;
        }
        process.stderr.write(`  ${c.scenario} run ${i + 1}/${runs}: ${(r.wallMs / 1000).toFixed(2)} s, exit ${r.exitCode}\n`);
      }
      const wall = median(walls)!;
      const ttd = median(ttds);
      const met = wall <= c.wallTargetMs && ttd !== null && ttd <= TTD_TARGET_MS && expected === runs;
      allMet &&= met;
      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      rows.push([
        `${c.scenario} ${shown(c.args)}`.trim(),
        String(runs),
        s(wall),
        s(Math.min(...walls)),
        s(Math.max(...walls)),
        `≤ ${s(c.wallTargetMs)} ${wall <= c.wallTargetMs ? '✓' : '✗'}`,
        ttd === null ? 'n/a' : `${ttd.toFixed(1)} ms ${ttd <= TTD_TARGET_MS ? '✓' : '✗'}`,
        `${ttdMax.toFixed(1)} ms`,
        `${expected}/${runs}`,
      ]);
    }
  } finally {
    if (!process.env.NMX_BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  console.log(`\nmachine: ${(await import('node:os')).availableParallelism()} cores; wall = whole process incl. Node start-up (the compiled harness, as the natmatrix command runs it); ttd = median time-to-direct over all direct tries`);
  console.log(allMet ? 'all targets met' : 'some target missed');
}

main().catch((e: unknown) => {
  process.stderr.write(`natmatrix bench: ${(e as Error).message}\n`);
  process.exit(2);
});
