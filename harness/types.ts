// Data types that flow between the lifecycle stages:
//   scenario ──plan──▶ Plan ──build──▶ Lab ──run──▶ Attempt[] ──judge──▶ Cell[] ──report──▶ files
// Every stage after `plan` consumes plain data, so judge and report are pure and unit-testable.

/** Paths the shipped agents report (an external agent may name others; they count as direct). */
export const PATHS = ['direct-udp', 'direct-tcp', 'relayed', 'matconnect', 'plain-udp'] as const;
export type KnownPath = (typeof PATHS)[number];

/** What a scenario expects of a pairing: an outcome (any direct path, a relayed one, none), or the
 * exact path that must win. (expect.ts adds success rates and observe-only: `Expectation`.) */
export type Expected = 'direct' | 'relayed' | 'failed' | KnownPath;

/** "connects in at least `atLeast` of the tries" (by `path` when given, by any path otherwise) */
export interface RateExpectation {
  atLeast: number;
  path?: string | undefined;
}

/** What a cell is expected to come to: an outcome or path, a success rate, or null (observe only). */
export type Expectation = Expected | RateExpectation | null;

export const RENDEZVOUS_SCOPES = ['run', 'lane', 'try'] as const;
/** run: one rendezvous serves every pairing (peers are told apart by NMX_SESSION); lane: one per lane,
 * for servers that pair whoever registers (fixed roles); try: a fresh one for every try, for servers
 * that remember peers from earlier tries. */
export type RendezvousScope = (typeof RENDEZVOUS_SCOPES)[number];

export const VERDICT_RULES = ['both', 'a', 'b', 'either'] as const;
/** both: both agents must agree (connected, or both failed cleanly); a / b: only that side's verdict
 * counts, and the other is ended once it has spoken; either: connected as soon as one side says so. */
export type VerdictRule = (typeof VERDICT_RULES)[number];

/** window: NMX_WAIT_MS to get paired, then NMX_TIMEOUT_MS to punch (for agents that know when they
 * learned their peer); budget: one overall NMX_BUDGET_MS from start (for stacks that don't expose it). */
export type Timing = { mode: 'window' } | { mode: 'budget'; budgetMs: number };

/** What one try (or a whole cell) came to. `relayed`: connected, but through a relay, not directly.
 * `error` is a fault (agent crash, hang, garbage, harness failure), never a clean "could not connect" —
 * that is `failed`. */
export type Outcome = 'direct' | 'relayed' | 'failed' | 'error';

/** The outcome a connected try's path stands for. */
export function outcomeOfPath(path: string | null | undefined): 'direct' | 'relayed' {
  return path === 'relayed' ? 'relayed' : 'direct';
}

/** The last stdout line of an agent, parsed (see README "Agent contract"). */
export interface AgentVerdict {
  ok: boolean;
  /** e.g. "direct-udp" */
  path?: string | undefined;
  /** the peer's endpoint as this agent saw it, "ip:port" */
  peer?: string | undefined;
  /** ms from learning the peer's endpoint to a confirmed two-way path */
  timeToDirectMs?: number | undefined;
  reason?: string | undefined;
}

/** How one agent process ended, as observed by the harness. */
export interface AgentExit {
  role: 'a' | 'b';
  exitCode: number | null;
  signal: string | null;
  /** killed by the harness at the hard deadline */
  timedOut: boolean;
  /** ended by the harness because the side that decides the try had spoken (verdict rule a, b, either) */
  stopped: boolean;
  durationMs: number;
  /** parsed verdict line, if the last stdout line was valid contract JSON */
  verdict: AgentVerdict | null;
  /** why the verdict could not be read (garbage, missing line), if so */
  verdictProblem: string | null;
  /** a serving agent (serve.ts) that broke its protocol during the try: started no server, printed
   * something other than the try's reply, ended mid-try. The try is an error */
  problem?: string;
  /** names of the agent's processes still running when it ended (its children, daemons it started):
   * the harness ended them */
  leftover: string[];
  /** last stderr lines, for reasons */
  stderrTail: string;
  /** paths of the captured stdout / stderr files, relative to the run folder */
  stdout: string;
  stderr: string;
}

/** One try of one pairing, judged. */
export interface Attempt {
  /** the agent's name (the scenario's agents tell their matrices apart by it) */
  agent: string;
  /** the cell this try belongs to: its index in the plan, over every agent's matrix in row-major order */
  cell: number;
  a: string;
  b: string;
  try: number;
  lane: number;
  outcome: Outcome;
  /** human-readable reason for anything but `direct` */
  reason: string | null;
  /** what is worth knowing whatever the outcome (an agent left processes running, …) */
  notes: string[];
  path: string | null;
  timeToDirectMs: number | null;
  agents: { a: AgentExit; b: AgentExit };
  /** run-folder-relative directory with logs and router state for this try */
  evidence: string;
}

/** A judged pairing: all tries of (a, b) by one agent. */
export interface Cell {
  agent: string;
  a: string;
  b: string;
  /** null in observe-only mode */
  expected: Expectation;
  outcome: Outcome;
  tries: number;
  /** tries that connected (directly or relayed) */
  successes: number;
  failures: number;
  errors: number;
  /** outcomes (or the paths of connected tries) differed between tries */
  flaky: boolean;
  /** the path of the connected tries (the most frequent one if they differ), null when none connected */
  path: string | null;
  /** connected tries per path */
  paths: Record<string, number>;
  /** over the direct tries; samples holds each direct try's time, in try order */
  timeToDirectMs: { median: number | null; max: number | null; samples: number[] };
  /** connected tries / tries with its 95 % Wilson score interval */
  successRate: { rate: number; low: number; high: number };
  /** for a success-rate expectation: the tries that count (connected, by `path` when named), their
   * Wilson interval, whether the expectation holds (the interval reaches `atLeast`) and whether it is
   * confirmed (the whole interval is at or above it) */
  rate?: { atLeast: number; path?: string; successes: number; low: number; high: number; holds: boolean; confirmed: boolean };
  match: boolean;
  /** distinct reasons of the tries that did not connect: the errors' first, then the clean failures' */
  reasons: string[];
  /** distinct notes of its tries (see Attempt.notes) */
  notes: string[];
  /** run-folder-relative directory holding this cell's evidence */
  evidence: string;
}

export type Mapping = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';
export type Filtering = Mapping;

export interface NatTypeInfo {
  name: string;
  short: string;
  title: string;
  mapping: Mapping;
  filtering: Filtering;
}

export interface HostFacts {
  kernel: string;
  nft: string;
  iproute2: string;
  conntrack: string;
  node: string;
  cpus: number;
}

/** A run's summary over a set of cells (all of them, or one agent's). */
export interface Summary {
  cells: number;
  matched: number;
  mismatched: number;
  errored: number;
  flaky: number;
  /** cells won by each path */
  paths: Record<string, number>;
  /** per strategy step after the first: cells it won (every earlier step had failed there) */
  rescued: Array<{ path: string; cells: number; of: number }>;
}

/** The spread of time-to-direct over every connected try (ms). */
export interface TimeDistribution {
  n: number;
  median: number | null;
  p90: number | null;
  max: number | null;
}

/** An agent of the run, as the report describes it. */
export interface AgentReport {
  name: string;
  description: string | null;
  /** its manifest or peer executable (relative to natmatrix's folder when inside it) */
  source: string;
  verdict: VerdictRule;
  timing: Timing;
  /** null: the agent runs without a rendezvous */
  rendezvousScope: RendezvousScope | null;
  services: string[];
  sockets: 'one' | 'many';
  peerCheck: boolean;
  /** ran as root, unconfined, as it declared ("privileged": true); false: confined, unprivileged */
  privileged: boolean;
  strategy: string[] | null;
  summary: Summary;
  timeToDirect: TimeDistribution;
}

/** A pairing where agents came to different outcomes (or paths). */
export interface AgentDifference {
  a: string;
  b: string;
  byAgent: Record<string, { outcome: Outcome; path: string | null; successes: number; tries: number }>;
}

export interface Report {
  tool: 'natmatrix';
  version: string;
  scenario: string;
  description: string;
  runId: string;
  startedAt: string;
  durationMs: number;
  host: HostFacts;
  /** tries: per cell (an adaptive run's first round); adaptive: how an adaptive run's rounds went */
  options: { tries: number; timeoutMs: number; jobs: number; observe: boolean; adaptive?: AdaptiveSummary };
  /** the (first) agent's fallback steps in order (its `strategy`), or null for a single-path agent */
  strategy: string[] | null;
  /** every agent of the run (one unless the scenario or the command line named several) */
  agents: AgentReport[];
  natTypes: NatTypeInfo[];
  /** side A NAT names, in row order */
  rows: string[];
  /** side B NAT names, in column order */
  cols: string[];
  cells: Cell[];
  /** lanes isolated on the internet bridge (enforced: false when the kernel lacks the nft bridge
   * family), IPv4 packets dropped there for crossing from one lane to another (by lane), and the
   * internet's depth: packets with a TTL of internetHops or less die on the bridge (lowTtlDrops) */
  isolation: { enforced: boolean; crossLaneDrops: Record<number, number>; internetHops: number; lowTtlDrops: number };
  /** over every agent's cells (rescue counts only for a single agent: see agents[].summary) */
  summary: Summary;
  /** with several agents: the pairings where they differ */
  comparison: AgentDifference[];
  /** absolute path of the run folder */
  outDir: string;
  /** the plan's identity (plan.ts planIdOf): shards of one run share it, and merge checks it */
  planId?: string;
  /** this run is the index-th of count shares of a larger run (--shard): its cells hold only its own
   * tries; `planned` counts the whole run's */
  shard?: { index: number; count: number; planned: number };
  /** this report pools the tries of these shards (natmatrix merge) */
  merged?: { shards: MergedShard[] };
  /** this run compared with a baseline run, cell by cell (--baseline; natmatrix compare) */
  baseline?: Comparison;
}

/** One shard of a merged report: where it ran and what it brought. */
export interface MergedShard {
  index: number;
  runId: string;
  startedAt: string;
  durationMs: number;
  jobs: number;
  tries: number;
  kernel: string;
  /** the shard's own run folder, as merge was given it */
  from: string;
}

/** How a cell changed between a base run and a new one (`natmatrix compare`, `--baseline`). */
export type CellChange = 'unchanged' | 'improved' | 'regressed' | 'not comparable';

/** One side of a compared cell: its counts as the run recorded them. */
export interface ComparedCounts {
  tries: number;
  /** tries that connected by any path */
  successes: number;
  /** tries that connected directly (a path other than "relayed") */
  direct: number;
  outcome: Outcome;
}

/** A cell of both runs, and whether it got significantly better or worse. */
export interface CellComparison {
  agent: string;
  a: string;
  b: string;
  change: CellChange;
  /** null when the cell is only in the other run */
  base: ComparedCounts | null;
  next: ComparedCounts | null;
  /** the test behind the verdict (null when not comparable) and its two-sided p-value, for the
   * measure that moved most: connected tries, or direct tries */
  test: string | null;
  measure: 'connected' | 'direct' | null;
  pValue: number | null;
  /** one line a person reads, e.g. "connected 20/20 → 0/20 (Fisher's exact test, p = 1.5e-11)" */
  reason: string;
}

export interface Comparison {
  base: { scenario: string; runId: string; version: string; startedAt: string };
  next: { scenario: string; runId: string; version: string; startedAt: string };
  /** significance level: a change with p below it counts */
  alpha: number;
  cells: CellComparison[];
  summary: Record<'unchanged' | 'improved' | 'regressed' | 'notComparable', number>;
}

/** What an adaptive run (--ci-width) says about itself: its target, cap, rounds, and how many cells
 * stopped for each reason (interval narrow enough, expectation settled, an error, the cap). */
export interface AdaptiveSummary {
  ciWidth: number;
  maxTries: number;
  rounds: number;
  stopped: Record<'interval' | 'settled' | 'error' | 'cap', number>;
}
