// One run of a scenario, start to end: plan → build → run → judge → report → teardown. The scenario
// command and the library's `runScenario` are both this module; the command adds only its options, its
// printing and its exit code.
import { writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fromUser, userDir, VERSION } from './args.ts';
import { LeftoverError, UsageError, VerifyError } from './errors.ts';
import { hostFacts, preflight, REQUIRED_TOOLS } from './host.ts';
import { agentFromPath, checkAgentNames, ensureInstalled, RENDEZVOUS_SCOPES, splitNamedAgent, type AgentSpec, type RendezvousScope, type ServiceName } from './manifest.ts';
import { buildTopology, type Lab } from './lab.ts';
import { classifyOnLab, misbehaving } from './classify.ts';
import { natInfo } from './nat.ts';
import { MAX_JOBS, plan, ShardError, topologyJson, type Plan, type Shard } from './plan.ts';
import { compareAgents, summarize, timeDistribution } from './report.ts';
import { writeReports } from './report-files.ts';
import { runnableAgents } from './agent-env.ts';
import { runAttempts } from './run.ts';
import { adaptiveRounds, type AdaptiveOptions } from './adaptive.ts';
import { checkOutOption, checkRunFolder, handOverToInvokingUser, makeRunFolder } from './run-folder.ts';
import { loadScenario, natTypesOf, parseScenario, ROOT, type Scenario, type ScenarioInput } from './scenario.ts';
import { Teardown, unwindOnSignals } from './teardown.ts';
import type { Cell, Report } from './types.ts';

export interface RunScenarioOptions {
  /** tries per pairing (default: the scenario's) */
  tries?: number;
  /** punch window per try, ms (default: the scenario's) */
  timeoutMs?: number;
  /** pairings run at once, each on its own routers (default: sized to the machine) */
  jobs?: number;
  /** report without expectations: nothing is a mismatch */
  observe?: boolean;
  /** routers the internet stands for (TTL); 0 turns it off */
  internetHops?: number;
  /** the run folder, new or empty (default: runs/<UTC time>-<scenario>-<run id>/ in the current directory) */
  out?: string;
  /** capture every try on both routers (tcpdump) into the run folder */
  pcap?: boolean;
  /** classify every router first and refuse (VerifyError) a matrix whose routers don't behave as declared */
  verify?: boolean;
  /** leave the topology up after the run (tear it down later with `natmatrix clean <run id>`) */
  keep?: boolean;
  /** agents instead of the scenario's: a peer executable or a manifest, or NAME=FILE for several */
  agents?: string[];
  /** the rendezvous executable for every agent */
  rendezvousAgent?: string;
  rendezvousScope?: RendezvousScope;
  /** a baseline run's report (loadReport): the run is compared with it cell by cell (report.baseline,
   * compare.json), regressions judged by Fisher's exact test at `baselineAlpha` (default 0.05) */
  baseline?: Report;
  baselineAlpha?: number;
  /** adaptive tries: after the first round, cells whose 95 % interval is wider than this get more
   * tries (their count doubles each round) until it is this narrow, their expectation is settled, or
   * `maxTries`; 0 < ciWidth < 1 */
  ciWidth?: number;
  /** most tries of one cell in an adaptive run (default 100) */
  maxTries?: number;
  /** run only the index-th of count shares of the tries (1-based; `natmatrix merge` pools the shards) */
  shard?: Shard;
  /** called after every finished try */
  onAttempt?: (done: number, total: number) => void;
  /** what the run says on the way (a verified router, …); default: nothing */
  log?: (line: string) => void;
  /** SIGINT, SIGTERM and SIGHUP tear the run down, then end the process (default true) */
  handleSignals?: boolean;
  /** called when a signal starts the teardown (before it runs) */
  onSignal?: (signal: NodeJS.Signals, runId: string) => void;
}

/** A scenario checked and planned, nothing built yet (what --dry-run prints). */
export interface PreparedRun {
  scenario: Scenario;
  plan: Plan;
  observe: boolean;
  /** --ci-width and --max-tries, checked (null: a fixed number of tries) */
  adaptive: AdaptiveOptions | null;
}

/** The whole-number options of a run: their command-line names and bounds, for the command (which
 * parses them from text) and the library (which checks the numbers it is given) alike. */
export const RUN_LIMITS = {
  tries: { option: 'tries', min: 1, max: 1000 },
  timeoutMs: { option: 'timeout', min: 50, max: 600_000 },
  jobs: { option: 'jobs', min: 1, max: MAX_JOBS },
  internetHops: { option: 'internet-hops', min: 0, max: 64 },
} as const;

const intOption = (key: keyof typeof RUN_LIMITS, value: number | undefined): number | undefined => {
  const { option, min, max } = RUN_LIMITS[key];
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new UsageError(`${option} must be a whole number from ${min} to ${max}, not ${value}`);
  return value;
};

/**
 * The agents of a run: the scenario's, or those given instead. One bare FILE replaces the scenario's
 * agent (an executable takes the scenario's rendezvous, services and strategy; a manifest brings its
 * own); NAME=FILE (several) runs them side by side. Paths are relative to the user's directory.
 */
function chosenAgents(s: Scenario, args: string[], rendezvous: string | undefined, scope: RendezvousScope | undefined): AgentSpec[] {
  let agents = args.length
    ? args.map((arg) => {
        const [name, file] = splitNamedAgent(arg);
        return agentFromPath(fromUser(file), s.agentDefaults, name);
      })
    : s.agents;
  // the command line wins over a manifest's own rendezvous too
  if (rendezvous) agents = agents.map((x) => ({ ...x, rendezvous: fromUser(rendezvous) }));
  if (scope) agents = agents.map((x) => (x.rendezvous === null ? x : { ...x, rendezvousScope: scope }));
  checkAgentNames(agents);
  return agents;
}

/** A scenario given by name, by path, or as data (a `defineScenario` object; its relative paths are
 * relative to the current directory). */
export async function resolveScenario(scenario: string | ScenarioInput | Scenario): Promise<Scenario> {
  if (typeof scenario === 'string') return loadScenario(scenario);
  if (isLoaded(scenario)) return scenario;
  const name = typeof (scenario as { name?: unknown }).name === 'string' ? (scenario as { name: string }).name : 'scenario';
  return parseScenario(scenario, resolve(userDir(), `${name}.scenario`));
}

const isLoaded = (s: object): s is Scenario => Array.isArray((s as Partial<Scenario>).agents) && typeof (s as Partial<Scenario>).file === 'string' && 'agentDefaults' in s;

/** Check everything that can be checked without root and plan the run. */
export async function prepareRun(scenario: string | ScenarioInput | Scenario, o: RunScenarioOptions = {}): Promise<PreparedRun> {
  const loaded = await resolveScenario(scenario);
  if (o.rendezvousScope !== undefined && !(RENDEZVOUS_SCOPES as readonly string[]).includes(o.rendezvousScope)) {
    throw new UsageError(`--rendezvous-scope must be one of ${RENDEZVOUS_SCOPES.join(', ')}, not "${o.rendezvousScope}"`);
  }
  const s: Scenario = { ...loaded, agents: chosenAgents(loaded, o.agents ?? [], o.rendezvousAgent, o.rendezvousScope) };
  const observe = o.observe === true || s.observe;
  let p: Plan;
  try {
    p = plan(s, {
      tries: intOption('tries', o.tries),
      timeoutMs: intOption('timeoutMs', o.timeoutMs),
      jobs: intOption('jobs', o.jobs),
      observe,
      internetHops: intOption('internetHops', o.internetHops),
      shard: o.shard,
    });
  } catch (e) {
    if (e instanceof ShardError) throw new UsageError(e.message, { cause: e });
    throw e;
  }
  checkOutOption(o.out);
  const adaptive = adaptiveOptions(o, p.tries);
  if (o.baseline && o.baseline.scenario !== s.name) {
    throw new UsageError(`the baseline is a run of scenario ${o.baseline.scenario}, this is ${s.name}: a baseline from another scenario compares nothing`);
  }
  return { scenario: s, plan: p, observe, adaptive };
}

export const DEFAULT_MAX_TRIES = 100;

/** --ci-width and --max-tries, checked: null for a run of fixed tries. */
function adaptiveOptions(o: RunScenarioOptions, tries: number): AdaptiveOptions | null {
  if (o.ciWidth === undefined) {
    if (o.maxTries !== undefined) throw new UsageError('--max-tries caps an adaptive run: give --ci-width W too');
    return null;
  }
  if (!(o.ciWidth > 0 && o.ciWidth < 1)) throw new UsageError(`--ci-width is the widest 95 % interval a cell may stop at, a number between 0 and 1 (e.g. 0.2), not ${o.ciWidth}`);
  if (o.shard) throw new UsageError('--ci-width decides tries from every try of a cell, which a shard does not see: run adaptive runs unsharded, or shard a run of fixed --tries');
  const maxTries = o.maxTries ?? Math.max(DEFAULT_MAX_TRIES, tries);
  if (!Number.isSafeInteger(maxTries) || maxTries < tries || maxTries > RUN_LIMITS.tries.max) {
    throw new UsageError(`--max-tries must be a whole number from the first round's ${tries} tries to ${RUN_LIMITS.tries.max}, not ${maxTries}`);
  }
  return { ciWidth: o.ciWidth, maxTries };
}

function utcStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Each agent as the report describes it, with the summary of its own cells. */
function agentReports(specs: AgentSpec[], cells: Cell[]): Report['agents'] {
  return specs.map((x) => {
    const own = cells.filter((c) => c.agent === x.name);
    return {
      name: x.name,
      description: x.description,
      source: relative(ROOT, x.source).startsWith('..') ? x.source : relative(ROOT, x.source),
      verdict: x.verdict,
      timing: x.timing,
      rendezvousScope: x.rendezvous === null ? null : x.rendezvousScope,
      services: x.services,
      sockets: x.sockets,
      peerCheck: x.peerCheck,
      privileged: x.privileged,
      strategy: x.strategy,
      summary: summarize(own, x.strategy),
      timeToDirect: timeDistribution(own),
    };
  });
}

async function verifyRouters(lab: Lab, scenario: Scenario, teardown: Teardown, outDir: string, say: (line: string) => void): Promise<void> {
  const results = await classifyOnLab(lab, natTypesOf(scenario), teardown, outDir);
  writeFileSync(resolve(outDir, 'classify.json'), JSON.stringify(results, null, 2) + '\n');
  const bad = misbehaving(results);
  if (bad.length) throw new VerifyError(`--verify: ${bad.join('; ')}; refusing to report a matrix on routers that don't behave as declared (probe logs in ${outDir})`);
  say(`verified: ${results.map((r) => r.nat).join(', ')} behave as declared (classify.json)`);
}

/**
 * Run a prepared scenario: needs root. Writes the run folder (topology.json, attempts.json,
 * report.json, report.md, evidence) and returns the report. The teardown runs on every way out; one
 * that cannot remove everything throws a LeftoverError (whatever the run's own outcome, which is its
 * `cause`).
 */
export async function executeRun(prepared: PreparedRun, o: RunScenarioOptions = {}): Promise<Report> {
  const { scenario, plan: p, observe, adaptive } = prepared;
  const say = o.log ?? (() => {});
  // an old run's folder is refused before anything is built (and without root)
  if (o.out !== undefined) checkRunFolder(fromUser(o.out));
  // captures need tcpdump, the relay's per-run certificate openssl, STUN and TURN coturn
  const uses = (svc: ServiceName) => scenario.agents.some((x) => x.services.includes(svc));
  preflight({
    ...REQUIRED_TOOLS,
    ...(o.pcap ? { tcpdump: 'tcpdump' } : {}),
    ...(uses('relay') ? { openssl: 'openssl' } : {}),
    ...(uses('stun') || uses('turn') ? { turnserver: 'coturn', ss: 'iproute2' } : {}),
  });
  for (const x of scenario.agents) ensureInstalled(x, (line) => process.stderr.write(line + '\n'));
  const agents = await runnableAgents(scenario.agents);
  const startedAt = new Date();
  const outDir = o.out !== undefined ? fromUser(o.out) : resolve(userDir(), 'runs', `${utcStamp(startedAt)}-${scenario.name}-${p.runId}`);
  // signals are guarded before the run folder says the run exists: a SIGINT the moment topology.json
  // appears must unwind the run, not find Node without a handler (the default: die on the spot)
  const teardown = new Teardown();
  const unguard = o.handleSignals === false ? async () => {} : unwindOnSignals(teardown, (sig) => o.onSignal?.(sig, p.runId), p.runId);
  try {
    const { created } = makeRunFolder(outDir);
    // the first undo, so the last to run (after every process that writes into the run folder has
    // ended): under sudo, the run folder goes to the user who ran sudo
    teardown.push('hand the run folder over', () => {
      const problem = handOverToInvokingUser(outDir, created);
      if (problem) process.stderr.write(`natmatrix: ${problem}\n`);
    });
    writeFileSync(resolve(outDir, 'topology.json'), JSON.stringify(topologyJson(p), null, 2) + '\n');
  } catch (cause) {
    await teardown.unwind();
    await unguard();
    if (cause instanceof UsageError) throw cause;
    throw new UsageError(`cannot write the run folder ${outDir}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message} (choose another with --out)`, { cause });
  }
  let failure: unknown = null;
  try {
    const t0 = performance.now();
    const [host, lab] = await Promise.all([hostFacts(), buildTopology(p, teardown)]);
    if (o.verify) await verifyRouters(lab, scenario, teardown, outDir, say);
    const rounds = adaptive ? adaptiveRounds(p.attempts, adaptive, scenario.agents.map((x) => x.name)) : null;
    const { attempts, cells, isolation } = await runAttempts(lab, agents, teardown, { outDir, pcap: o.pcap ?? false, onAttempt: o.onAttempt, ...(rounds ? { more: rounds.next } : {}) });
    writeFileSync(resolve(outDir, 'attempts.json'), JSON.stringify(attempts, null, 2) + '\n');
    const report: Report = {
      tool: 'natmatrix',
      version: VERSION,
      scenario: scenario.name,
      description: scenario.description,
      runId: p.runId,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      host,
      options: { tries: p.tries, timeoutMs: p.timeoutMs, jobs: p.jobs, observe, ...(rounds ? { adaptive: rounds.summary(cells) } : {}) },
      strategy: scenario.agents[0]!.strategy,
      agents: agentReports(scenario.agents, cells),
      natTypes: natTypesOf(scenario).map(natInfo),
      rows: scenario.a,
      cols: scenario.b,
      cells,
      isolation,
      summary: summarize(cells, scenario.agents.length === 1 ? scenario.agents[0]!.strategy : null),
      comparison: compareAgents(cells),
      outDir,
      planId: p.planId,
      ...(p.shard ? { shard: p.shard } : {}),
    };
    if (o.baseline) {
      const { compareReports } = await import('./compare.ts');
      report.baseline = compareReports(o.baseline, report, o.baselineAlpha === undefined ? {} : { alpha: o.baselineAlpha });
      writeFileSync(resolve(outDir, 'compare.json'), JSON.stringify(report.baseline, null, 2) + '\n');
    }
    writeReports(outDir, report, attempts);
    if (o.keep) lab.keep();
    return report;
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    const errors = await teardown.unwind();
    await unguard();
    // a teardown that left something wins over the run's own outcome, which it carries as its cause
    // eslint-disable-next-line no-unsafe-finally
    if (errors.length) throw new LeftoverError(errors, p.runId, failure === null ? undefined : { cause: failure });
  }
}

/**
 * Run a scenario — a shipped one by name, a file by path, or a `defineScenario` object — and return
 * its report. Needs root. Throws UsageError / EnvironmentError for what the caller can fix (exit 2 of
 * the command), VerifyError (--verify), RunError when the run itself fails, and LeftoverError when the
 * teardown could not remove everything. Pairings that differ from their expectations are not thrown:
 * they are in `report.summary.mismatched` and in each cell's `match`.
 */
export async function runScenario(scenario: string | ScenarioInput | Scenario, options: RunScenarioOptions = {}): Promise<Report> {
  return executeRun(await prepareRun(scenario, options), options);
}
