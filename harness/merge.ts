// merge: the run folders of a run's shards (--shard i/n, each from its own machine) → one run folder
// as if one machine had run every try. The tries are pooled per cell and judged again (judgeCell: the
// counts add up, the Wilson interval, time-to-direct, paths and flakiness come from the pooled tries),
// the evidence of every shard is linked in (hard links; a try's folder keeps its name: try numbers are
// unique in the run), and every report format is written. Shards of different plans, a missing or
// repeated shard, or a report that is not whole are refused before anything is written.
import { constants, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError, issueLines } from './errors.ts';
import { judgeCell, triesByCell } from './judge.ts';
import { compareAgents, summarize, timeDistribution } from './report.ts';
import { writeReports } from './report-files.ts';
import { checkRunFolder, makeRunFolder } from './run-folder.ts';
import { newRunId } from './plan.ts';
import type { Attempt, Cell, MergedShard, Report } from './types.ts';

export interface MergeOptions {
  /** the merged run folder: new or empty */
  out: string;
}

/** A shard's report as merge needs it (the rest is carried over as it is). */
const shardReportSchema = z.looseObject({
  tool: z.literal('natmatrix'),
  version: z.string(),
  scenario: z.string(),
  runId: z.string(),
  startedAt: z.string(),
  durationMs: z.number(),
  planId: z.string().min(1),
  shard: z.object({ index: z.number().int().min(1), count: z.number().int().min(1), planned: z.number().int().min(1) }),
  options: z.looseObject({ tries: z.number(), timeoutMs: z.number(), jobs: z.number(), observe: z.boolean() }),
  host: z.looseObject({ kernel: z.string() }),
  agents: z.array(z.looseObject({ name: z.string(), strategy: z.array(z.string()).nullable() })).min(1),
  rows: z.array(z.string()),
  cols: z.array(z.string()),
  cells: z.array(z.looseObject({ agent: z.string(), a: z.string(), b: z.string(), expected: z.unknown(), evidence: z.string() })),
  isolation: z.looseObject({ enforced: z.boolean(), crossLaneDrops: z.record(z.string(), z.number()), internetHops: z.number(), lowTtlDrops: z.number() }),
});

const attemptsSchema = z.array(
  z.looseObject({
    agent: z.string(),
    cell: z.number().int().min(0),
    a: z.string(),
    b: z.string(),
    try: z.number().int().min(1),
    outcome: z.enum(['direct', 'relayed', 'failed', 'error']),
    path: z.string().nullable(),
    timeToDirectMs: z.number().nullable(),
    notes: z.array(z.string()),
  }),
);

interface LoadedShard {
  dir: string;
  report: Report & { shard: NonNullable<Report['shard']>; planId: string };
  attempts: Attempt[];
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `${file} is missing: not a finished natmatrix run folder` : `cannot read ${file}: ${code ?? (e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is corrupt: ${(e as Error).message}`, { cause: e });
  }
}

/** Tries shard i of n holds of a run of `planned` (tries are dealt round the shards, plan.ts). */
export function shareOf(index: number, count: number, planned: number): number {
  return planned >= index ? Math.floor((planned - index) / count) + 1 : 0;
}

function loadShard(dir: string): LoadedShard {
  const file = join(dir, 'report.json');
  const raw = readJson(file);
  if (raw && typeof raw === 'object' && (raw as { tool?: unknown }).tool === 'natmatrix' && !('shard' in raw)) {
    throw new UsageError(`${file} is a whole run, not a shard: merge pools runs made with --shard i/n`);
  }
  const parsed = shardReportSchema.safeParse(raw);
  if (!parsed.success) throw new UsageError(`${file} is not a natmatrix shard report: ${issueLines(parsed.error.issues).slice(0, 2).join('; ')}`);
  const report = parsed.data as unknown as LoadedShard['report'];
  const { index, count, planned } = report.shard;
  if (index > count) throw new UsageError(`${file} is corrupt: shard ${index}/${count}`);
  const attemptsFile = join(dir, 'attempts.json');
  const tries = attemptsSchema.safeParse(readJson(attemptsFile));
  if (!tries.success) throw new UsageError(`${attemptsFile} is corrupt: ${issueLines(tries.error.issues).slice(0, 2).join('; ')}`);
  const attempts = tries.data as unknown as Attempt[];
  const share = shareOf(index, count, planned);
  if (attempts.length !== share) {
    throw new UsageError(`${attemptsFile} holds ${attempts.length} tries where shard ${index}/${count} of a ${planned}-try run holds ${share}: an interrupted or edited run`);
  }
  return { dir, report, attempts };
}

/** The shards as a set: one plan, every index once. Throws UsageError naming what does not fit. */
function checkSet(shards: LoadedShard[]): void {
  const first = shards[0]!;
  for (const s of shards.slice(1)) {
    const differs = (what: string, x: unknown, y: unknown) => {
      if (x !== y) throw new UsageError(`${s.dir} is not a shard of the same run as ${first.dir}: ${what} ${JSON.stringify(y)} where the other has ${JSON.stringify(x)}`);
    };
    differs('scenario', first.report.scenario, s.report.scenario);
    differs('natmatrix', first.report.version, s.report.version);
    differs('shard count', first.report.shard.count, s.report.shard.count);
    differs('plan', first.report.planId, s.report.planId);
  }
  const count = first.report.shard.count;
  const byIndex = new Map<number, string>();
  for (const s of shards) {
    const other = byIndex.get(s.report.shard.index);
    if (other !== undefined) throw new UsageError(`shard ${s.report.shard.index}/${count} given twice: ${other} and ${s.dir}`);
    byIndex.set(s.report.shard.index, s.dir);
  }
  const missing = Array.from({ length: count }, (_, k) => k + 1).filter((i) => !byIndex.has(i));
  if (missing.length) {
    const shown = missing.slice(0, 8).join(', ') + (missing.length > 8 ? `, … (${missing.length} in all)` : '');
    throw new UsageError(`shard${missing.length > 1 ? 's' : ''} ${shown} of ${count} missing: merge needs every shard of the run`);
  }
}

/** The cells of the whole run, judged from every shard's tries. */
export function poolCells(shards: LoadedShard[]): { cells: Cell[]; attempts: Attempt[] } {
  const attempts = shards.flatMap((s) => s.attempts).sort((x, y) => x.cell - y.cell || x.try - y.try);
  const seen = new Set<string>();
  for (const t of attempts) {
    const key = `${t.cell}.${t.try}`;
    if (seen.has(key)) throw new UsageError(`try ${t.try} of ${t.agent} ${t.a} × ${t.b} is in two shards: not the shards of one run`);
    seen.add(key);
  }
  // each cell's expectation and evidence folder, as the shards' reports say (they agree: same plan)
  const described = new Map<string, Cell>();
  for (const s of shards) for (const c of s.report.cells) described.set(`${c.agent}\0${c.a}\0${c.b}`, c);
  const cells = [...triesByCell(attempts).entries()]
    .sort(([x], [y]) => x - y)
    .map(([, tries]) => {
      const first = tries[0]!;
      const d = described.get(`${first.agent}\0${first.a}\0${first.b}`);
      if (!d) throw new UsageError(`the tries of ${first.agent} ${first.a} × ${first.b} have no cell in any shard's report: a corrupt shard`);
      return judgeCell(first.a, first.b, d.expected, tries, d.evidence, first.agent);
    });
  return { cells, attempts };
}

/** The merged report: the first shard's description of the run, the pooled cells and their summaries. */
function mergedReport(shards: LoadedShard[], cells: Cell[], outDir: string): Report {
  const base = [...shards].sort((x, y) => x.report.shard.index - y.report.shard.index);
  const first = base[0]!.report;
  const crossLaneDrops: Record<number, number> = {};
  for (const s of base) for (const [lane, n] of Object.entries(s.report.isolation.crossLaneDrops)) crossLaneDrops[Number(lane)] = (crossLaneDrops[Number(lane)] ?? 0) + n;
  const merged: MergedShard[] = base.map((s) => ({
    index: s.report.shard.index,
    runId: s.report.runId,
    startedAt: s.report.startedAt,
    durationMs: s.report.durationMs,
    jobs: s.report.options.jobs,
    tries: s.attempts.length,
    kernel: s.report.host.kernel,
    from: s.dir,
  }));
  // a shard's comparison with a baseline (--baseline on a shard) compares a share: not the run's
  const { shard: _shard, baseline: _baseline, ...rest } = first;
  return {
    ...rest,
    runId: newRunId(),
    startedAt: base.map((s) => s.report.startedAt).sort()[0]!,
    // the sharded run took as long as its slowest shard
    durationMs: Math.max(...base.map((s) => s.report.durationMs)),
    options: { ...first.options, jobs: base.reduce((n, s) => n + s.report.options.jobs, 0) },
    agents: first.agents.map((x) => {
      const own = cells.filter((c) => c.agent === x.name);
      return { ...x, summary: summarize(own, x.strategy), timeToDirect: timeDistribution(own) };
    }),
    cells,
    isolation: {
      enforced: base.every((s) => s.report.isolation.enforced),
      crossLaneDrops,
      internetHops: first.isolation.internetHops,
      lowTtlDrops: base.reduce((n, s) => n + s.report.isolation.lowTtlDrops, 0),
    },
    summary: summarize(cells, first.agents.length === 1 ? first.agents[0]!.strategy : null),
    comparison: compareAgents(cells),
    outDir,
    merged: { shards: merged },
  };
}

/**
 * Copy a folder's tree into `to` (merging into folders already there; a file already there is an
 * error: shards never share a try's folder). Files are hard-linked where they can be (the same file
 * system: no data copied, and a run's evidence is never written again), copied otherwise; links are
 * recreated as links.
 */
export function linkTree(from: string, to: string): void {
  const st = lstatSync(from);
  if (st.isDirectory()) {
    mkdirSync(to, { recursive: true, mode: st.mode & 0o7777 });
    for (const entry of readdirSync(from)) linkTree(join(from, entry), join(to, entry));
  } else if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), to);
  } else {
    try {
      linkSync(from, to);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw e;
      copyFileSync(from, to, constants.COPYFILE_EXCL);
    }
  }
}

/**
 * Merge the run folders of every shard of one run into `opts.out` (new or empty) and return the merged
 * report. Throws UsageError, before writing anything, for shards of different plans, a missing or
 * repeated shard, or a report or attempts file that is missing or corrupt.
 */
export function mergeRuns(dirs: string[], opts: MergeOptions): Report {
  if (dirs.length === 0) throw new UsageError('give the run folders of every shard to merge');
  const out = resolve(opts.out);
  const shards = dirs.map((d) => loadShard(resolve(d)));
  checkSet(shards);
  for (const s of shards) {
    if (out === s.dir) throw new UsageError(`--out ${out} is a shard's own folder: choose a new or empty folder`);
  }
  checkRunFolder(out);
  const { cells, attempts } = poolCells(shards);
  const report = mergedReport(shards, cells, out);
  // written beside the folder first and moved into place whole: a failure leaves nothing half-written
  const staging = join(dirname(out), `.${basename(out)}.merging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    makeRunFolder(staging);
    for (const s of shards) {
      // the tries' evidence at the paths their attempts name; the shard's own files under shards/<i>/
      if (existsSync(join(s.dir, 'cells'))) linkTree(join(s.dir, 'cells'), join(staging, 'cells'));
      const own = join(staging, 'shards', String(s.report.shard.index));
      mkdirSync(own, { recursive: true });
      for (const entry of readdirSync(s.dir)) if (entry !== 'cells') linkTree(join(s.dir, entry), join(own, entry));
    }
    writeFileSync(join(staging, 'attempts.json'), JSON.stringify(attempts, null, 2) + '\n');
    writeReports(staging, report, attempts);
    // rename(2) replaces an empty folder (checked above) in one step
    renameSync(staging, out);
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot write the merged run folder ${out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  return report;
}
