// plan: scenario + options → the concrete topology and the list of attempts. Pure: nothing is touched,
// so the plan can be unit-tested, printed (--dry-run) and written as topology.json.
import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism, freemem } from 'node:os';
import { NS_PREFIX } from './netns.ts';
import { findNat, type NatType } from './nat.ts';
import { DEFAULT_INTERNET_HOPS, expectedOf, SAME_SITE, type Scenario } from './scenario.ts';
import type { Expectation } from './expect.ts';
import type { PeerView } from './judge.ts';
import { DEFAULT_START_COST_MS } from './manifest.ts';
import { VERSION } from './package.ts';

/** One NAT'd site: a router namespace and the host behind it. */
export interface Side {
  role: 'a' | 'b';
  router: string;
  host: string;
  /** interface names inside the router */
  wanIf: 'wan';
  lanIf: 'lan';
  /** name of this router's port on the internet bridge (inside the internet namespace) */
  bridgePort: string;
  wanIp: string;
  lanIp: string;
  lanPrefix: number;
  hostIp: string;
  /** the host's next hop: the router's LAN address, or the home router's on a two-layer side */
  hostGateway: string;
  hostPort: number;
  /** external port a DMZ router forwards to the host */
  dmzPort: number;
  /**
   * On a two-layer side (scenarios with a double NAT "home+carrier" on this side) `router` is the
   * carrier-grade NAT, whose LAN is the shared address space 100.64.0.0/24 (RFC 6598), and this is the
   * home router between it and the host. A single NAT type then runs on the carrier router and the
   * home router only forwards.
   */
  inner?: { router: string; wanIp: string; lanIp: string; lanPrefix: number };
  /** a second host on this site's LAN (side A, when a scenario has a "same-site" column): its own
   * address and agent port, so the NAT never has two hosts on one source port */
  host2?: { ns: string; ip: string; port: number };
  /** the host's own public address on 198.51.100.0/24, a second address on the router's WAN that a
   * cloud-eip router translates 1:1 to the host (sides whose scenario column holds a cloud-eip) */
  publicIp?: string;
}

/** A lane is one isolated pair of sites; pairings run one after another in a lane, lanes run at once. */
export interface Lane {
  index: number;
  a: Side;
  b: Side;
}

export interface PlannedAttempt {
  /** index of the agent (in the scenario's agents) that runs this try */
  agent: number;
  /** index of the cell in row-major order, over every agent's matrix */
  cell: number;
  a: string;
  b: string;
  natA: NatType;
  natB: NatType;
  try: number;
  expected: Expectation;
  /** rendezvous session id, unique in the run */
  session: string;
  /** B is the second host behind A's router (column "same-site"); natB is then natA */
  sameSite: boolean;
}

export interface Plan {
  runId: string;
  scenario: string;
  internet: { ns: string; bridge: string; ip: string; prefix: number; subnet: string };
  /** the public node: the rendezvous on ip:port, the classify probe server on ip and altIp, STUN and
   * TURN on stunIp and stunAltIp (RFC 5780 wants two addresses) */
  rendezvous: { ns: string; ip: string; altIp: string; stunIp: string; stunAltIp: string; port: number };
  /** how many agents run side by side (each its own matrix over the same lanes) */
  agents: number;
  /** routers the internet bridge stands for: a packet crosses it only with a TTL above this (0: off) */
  internetHops: number;
  lanes: Lane[];
  attempts: PlannedAttempt[];
  tries: number;
  timeoutMs: number;
  /** the scenario's hold and keepalive (NMX_HOLD_MS, NMX_KEEPALIVE_MS) */
  holdMs: number;
  keepaliveMs: number;
  jobs: number;
  /** how the number of jobs was chosen (--verbose) */
  jobsWhy?: string;
  /** what every shard of one run agrees on: a hash of natmatrix's version, the scenario, the options
   * that shape the tries and every planned try (agent, pairing, try number, expectation) */
  planId: string;
  /** this run is one share of a larger one (--shard i/n): `attempts` holds only its tries, `planned`
   * counts the whole run's */
  shard?: Shard & { planned: number };
}

/** `--shard i/n`: the i-th of n shares of a run's tries (1-based). */
export interface Shard {
  index: number;
  count: number;
}

export interface PlanOptions {
  runId?: string;
  tries?: number;
  timeoutMs?: number;
  jobs?: number;
  /** memory available to plan the default number of jobs for (default: the machine's, when cpus is not given) */
  freeMemoryBytes?: number;
  /** cores to plan the default number of jobs for */
  cpus?: number;
  /** report without expectations (--observe) */
  observe?: boolean;
  /** --internet-hops */
  internetHops?: number;
  /** run only this share of the tries (--shard i/n) */
  shard?: Shard;
}

/** Most lanes one run may have: two WAN addresses each in 203.0.113.20–.253. */
export const MAX_JOBS = 100;
export const PUBLIC_SUBNET = '203.0.113.0/24';
const PUBLIC = '203.0.113.';

export function newRunId(): string {
  // 6 chars of base36: short enough for readable namespace names, wide enough not to collide
  return (randomBytes(5).readUIntBE(0, 5) % 36 ** 6).toString(36).padStart(6, '0');
}

export function nsName(runId: string, node: string): string {
  return `${NS_PREFIX}${runId}-${node}`;
}

/** Memory one lane may take at its peak: two agents (Node, ~50 MB each), their share of the run's
 * services and the harness's per-lane state, rounded up. */
export const LANE_MEMORY_BYTES = 150 * 1024 * 1024;

export interface JobsChoice {
  jobs: number;
  /** how the number came about, for --verbose */
  why: string;
}

/** Agents that serve many tries (manifest "serve"): the tries' punch window, for chooseJobs. */
export interface Serving {
  windowMs: number;
}

/** What a connecting try of a serving agent keeps its lane busy for (pairing, punching; measured). */
const SERVED_TRY_MS = 50;
/** Beyond this many lanes per core, serving agents' lanes cost more than they overlap (measured: 8 → 12
 * → 16 lanes on 2 cores made rfc4787-grid 9.4 → 10.5 → 12.1 s), and each takes ~35 MB. */
const SERVED_LANES_PER_CORE = 4;

/**
 * How many lanes to run at once, from the machine's cores and memory.
 *
 * Agents started per try: busy lanes (tries that connect: two agents starting, CPU-bound) get `perCore`
 * per core, 2 for the shipped agents' start cost, fewer for agents whose manifest declares a higher one.
 * A try expected to fail idles through its window, so it may take a lane of its own, but never more idle
 * lanes than busy ones: agent start-ups then saturate the cores whatever the idle tries do.
 *
 * Agents that serve many tries (`serving`): a try costs little CPU, a lane costs its build and its two
 * agents' start-ups once, so lanes are worth what they overlap of the tries' latency. The run's lane
 * time is estimated (a failing try idles its window, a connecting one SERVED_TRY_MS) and spread over
 * √(that many seconds) lanes, at least one and at most SERVED_LANES_PER_CORE per core: about the
 * number for which starting another lane costs what it saves.
 *
 * Either way tries that hold their path idle for seconds (holdMs) may each take a lane, and lanes take
 * at most half the available memory (LANE_MEMORY_BYTES each), never more than 32.
 *
 * Measured on 2 cores, wall. One process per try: full-matrix ×3 (75 tries, 9 failing) 35.6 s at 4
 * lanes, 29.8 s at 8, 31.5 s at 16, 35.4 s at 32; rfc4787-grid ×2 (162 tries) 65.7 s at 4, 70.6 s at 8,
 * 82.1 s at 32. Serving agents: full-matrix ×1 (25 tries, 3 failing) 4.4 s at 2 lanes, 4.7 s at 4, 6.6 s
 * at 8; ×5 (125 tries) 8.5 s at 2, 6.4 s at 4, 7.2 s at 8, 12.2 s at 16; rfc4787-grid ×2 (162 tries, 48
 * failing) 14.8 s at 3, 11.8 s at 4, 9.7 s at 6, 9.4 s at 8, 10.5 s at 12, 12.1 s at 16.
 */
export function chooseJobs(attempts: PlannedAttempt[], cpus: number, holding = false, startCostMs = DEFAULT_START_COST_MS, freeMemoryBytes = Infinity, serving: Serving | null = null): JobsChoice {
  // a try that holds its path (holdMs) idles through the hold whatever its outcome
  const idle = holding ? attempts.length : attempts.filter((a) => a.expected === 'failed').length;
  const byMemory = Number.isFinite(freeMemoryBytes) ? Math.max(1, Math.floor((freeMemoryBytes / 2) / LANE_MEMORY_BYTES)) : Infinity;
  const caps = (lanes: number, why: string[]): JobsChoice => {
    const jobs = Math.max(1, Math.min(attempts.length, lanes, byMemory, 32));
    const limits = [
      ...why,
      ...(Number.isFinite(byMemory) ? [`memory allows ${byMemory} (${Math.round(freeMemoryBytes / 2 ** 20)} MiB available, lanes may use half, ${LANE_MEMORY_BYTES / 2 ** 20} MiB each)`] : []),
      ...(jobs === attempts.length ? [`capped at the ${attempts.length} tries`] : jobs === 32 ? ['capped at 32'] : []),
    ];
    return { jobs, why: limits.join(', ') };
  };
  if (serving && !holding) {
    // anything but a direct path idles through a window (a relayed try through its failed steps')
    const slow = attempts.filter((a) => a.expected !== 'direct').length;
    const laneSeconds = (slow * serving.windowMs + (attempts.length - slow) * SERVED_TRY_MS) / 1000;
    const lanes = Math.max(cpus, Math.min(Math.ceil(Math.sqrt(laneSeconds)), SERVED_LANES_PER_CORE * cpus));
    return caps(lanes, [`${lanes} for agents that serve their tries (√ of ~${Math.round(laneSeconds)} s of tries: ${slow} of ${attempts.length} expected to take up to their ${serving.windowMs} ms window; at least 1, at most ${SERVED_LANES_PER_CORE} per core × ${cpus} cores)`]);
  }
  // agents that cost more CPU to start than the shipped ones keep fewer lanes per core busy
  const perCore = Math.min(4, Math.max(1, (2 * DEFAULT_START_COST_MS) / startCostMs));
  const busy = Math.max(1, Math.round(perCore * cpus));
  // a held path idles for seconds, long beside a start-up: every holding try may have its lane
  const idleLanes = holding ? idle : Math.min(idle, busy);
  return caps(busy + idleLanes, [
    `${busy} busy (${perCore} per core × ${cpus} cores)`,
    `+ ${idleLanes} for tries expected to idle (${idle} of ${attempts.length}${holding ? ', holding their paths' : '; at most as many as busy'})`,
  ]);
}

/** The default number of lanes (chooseJobs without the reason). */
export function defaultJobs(attempts: PlannedAttempt[], cpus: number, holding = false, startCostMs = DEFAULT_START_COST_MS, freeMemoryBytes = Infinity, serving: Serving | null = null): number {
  return chooseJobs(attempts, cpus, holding, startCostMs, freeMemoryBytes, serving).jobs;
}

/** How many NAT layers each side's sites have (2 when any of its types is a double NAT), and whether
 * side A's sites get a second host (a "same-site" column). */
export interface Layers {
  a: 1 | 2;
  b: 1 | 2;
  sameSite?: boolean;
  /** sides whose hosts get a public address of their own (a cloud-eip on that side) */
  publicIp?: { a: boolean; b: boolean };
}

/** Cloud hosts' own public addresses: the second TEST-NET range, on-link on the internet bridge. */
export const CLOUD_SUBNET = '198.51.100.0/24';

function side(runId: string, lane: number, role: 'a' | 'b', layers: 1 | 2, sameSite = false, publicIp = false): Side {
  const n = 20 + 2 * lane + (role === 'a' ? 0 : 1);
  const lan = role === 'a' ? '10.0.1.' : '192.168.2.';
  const shared = '100.64.0.';
  return {
    role,
    router: nsName(runId, `${lane}r${role}`),
    host: nsName(runId, `${lane}h${role}`),
    wanIf: 'wan',
    lanIf: 'lan',
    bridgePort: `l${lane}${role}`,
    wanIp: PUBLIC + n,
    lanIp: layers === 2 ? shared + '1' : lan + '1',
    lanPrefix: 24,
    hostIp: lan + '10',
    hostGateway: lan + '1',
    hostPort: 40000,
    dmzPort: 41000,
    ...(layers === 2 ? { inner: { router: nsName(runId, `${lane}i${role}`), wanIp: shared + '2', lanIp: lan + '1', lanPrefix: 24 } } : {}),
    ...(sameSite ? { host2: { ns: nsName(runId, `${lane}h${role}2`), ip: lan + '11', port: 40001 } } : {}),
    ...(publicIp ? { publicIp: `198.51.100.${n}` } : {}),
  };
}

/** Two layers on a side that holds any double NAT. */
export function layersOf(scenario: Pick<Scenario, 'a' | 'b'>): Layers {
  const two = (names: string[]) => (names.some((n) => findNat(n)?.layers) ? 2 : 1);
  const pub = (names: string[]) => names.some((n) => findNat(n)?.publicIp);
  return { a: two(scenario.a), b: two(scenario.b), sameSite: scenario.b.includes(SAME_SITE), publicIp: { a: pub(scenario.a), b: pub(scenario.b) } };
}

function checkRunId(runId: string): string {
  if (!/^[a-z0-9]{1,12}$/.test(runId)) throw new Error(`run id "${runId}" must be 1–12 lower-case letters or digits`);
  return runId;
}

/** The topology alone: internet, rendezvous node and `lanes` lanes, with no attempts (classify uses it). */
export function topologyPlan(name: string, lanes: number, runId = newRunId(), layers: Layers = { a: 1, b: 1 }): Plan {
  checkRunId(runId);
  const n = Math.min(Math.max(1, lanes), MAX_JOBS);
  return {
    runId,
    scenario: name,
    internet: { ns: nsName(runId, 'inet'), bridge: 'br0', ip: PUBLIC + '1', prefix: 24, subnet: PUBLIC_SUBNET },
    rendezvous: { ns: nsName(runId, 'rdv'), ip: PUBLIC + '10', altIp: PUBLIC + '11', stunIp: PUBLIC + '12', stunAltIp: PUBLIC + '13', port: 3478 },
    agents: 1,
    internetHops: DEFAULT_INTERNET_HOPS,
    lanes: Array.from({ length: n }, (_, i) => ({ index: i, a: side(runId, i, 'a', layers.a, layers.sameSite, layers.publicIp?.a), b: side(runId, i, 'b', layers.b, false, layers.publicIp?.b) })),
    attempts: [],
    tries: 0,
    timeoutMs: 0,
    holdMs: 0,
    keepaliveMs: 0,
    jobs: n,
    planId: '',
  };
}

export function plan(scenario: Scenario, opts: PlanOptions = {}): Plan {
  const runId = checkRunId(opts.runId ?? newRunId());
  const tries = opts.tries ?? scenario.tries;
  const timeoutMs = opts.timeoutMs ?? scenario.timeoutMs;
  const attempts: PlannedAttempt[] = [];
  let cell = 0;
  // several agents run the same pairings on the same lanes: one matrix each
  scenario.agents.forEach((agent, k) => {
    for (const a of scenario.a) {
      for (const b of scenario.b) {
        const expected = expectedOf(scenario, a, b, agent, opts.observe);
        for (let t = 1; t <= tries; t++) {
          attempts.push({
            agent: k, cell, a, b, natA: findNat(a)!, natB: findNat(b === SAME_SITE ? a : b)!, try: t, sameSite: b === SAME_SITE,
            expected,
            session: `${runId}.${cell}.${t}`,
          });
        }
        cell++;
      }
    }
  });
  // Pairings expected to fail cost a whole punch window: start them first so they overlap the rest.
  attempts.sort((x, y) => Number(x.expected === 'direct') - Number(y.expected === 'direct') || x.cell - y.cell || x.try - y.try);
  const internetHops = opts.internetHops ?? scenario.internetHops;
  const planId = planIdOf(scenario, attempts, { tries, timeoutMs, internetHops });
  const planned = attempts.length;
  // a shard's tries are dealt round the shards in the order above: a cell's tries spread over them (its
  // 20 tries over 4 runners), and each shard gets its share of the slow, expected-to-fail tries
  const shard = opts.shard ? checkShard(opts.shard, planned) : null;
  const mine = shard ? attempts.filter((_, k) => k % shard.count === shard.index - 1) : attempts;
  const cost = mine.reduce((sum, x) => sum + scenario.agents[x.agent]!.startCostMs, 0) / Math.max(1, mine.length);
  // lanes sized for serving agents when every agent of the run serves (a window per strategy step)
  const serving = scenario.agents.every((x) => x.serve) ? { windowMs: timeoutMs * Math.max(...scenario.agents.map((x) => x.strategy?.length ?? 1)) } : null;
  const chosen = opts.jobs === undefined ? chooseJobs(mine, opts.cpus ?? availableParallelism(), scenario.holdMs > 0, cost, opts.freeMemoryBytes ?? (opts.cpus === undefined ? freemem() : Infinity), serving) : null;
  const jobs = Math.min(opts.jobs ?? chosen!.jobs, mine.length, MAX_JOBS);
  if (jobs < 1) throw new Error('jobs must be at least 1');
  const { holdMs, keepaliveMs } = scenario;
  const jobsWhy = chosen ? chosen.why : `--jobs ${opts.jobs}${opts.jobs! > jobs ? `, capped at the ${jobs} tries` : ''}`;
  return { ...topologyPlan(scenario.name, jobs, runId, layersOf(scenario)), agents: scenario.agents.length, internetHops, attempts: mine, tries, timeoutMs, holdMs, keepaliveMs, jobs, jobsWhy, planId, ...(shard ? { shard: { ...shard, planned } } : {}) };
}

/** Most shards one run may be split into. */
export const MAX_SHARDS = 1000;

/** `i/n` from the command line (1 ≤ i ≤ n), or a UsageError-worthy message. */
export function parseShard(text: string): Shard | string {
  const m = /^(\d{1,4})\/(\d{1,4})$/.exec(text.trim());
  if (!m) return `--shard takes i/n, the i-th of n shares (e.g. 2/4), not "${text}"`;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) return `--shard ${text}: n must be 1 to ${MAX_SHARDS}`;
  if (index < 1 || index > count) return `--shard ${text}: i must be 1 to ${count} (shards are numbered from 1)`;
  return { index, count };
}

function checkShard(shard: Shard, planned: number): Shard {
  const { index, count } = shard;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || count > MAX_SHARDS || index < 1 || index > count) {
    throw new ShardError(`shard ${index}/${count}: need 1 ≤ i ≤ n ≤ ${MAX_SHARDS}`);
  }
  if (count > planned) throw new ShardError(`--shard ${index}/${count}: the run has only ${planned} tries, so at most ${planned} shards (each gets at least one try)`);
  return shard;
}

/** A shard that cannot be: the session turns it into a UsageError (exit 2). */
export class ShardError extends Error {}

/**
 * The plan's identity, the same on every machine: natmatrix's version, the scenario's name, the options
 * that shape the tries, each agent as it is judged (name, verdict rule, timing, strategy) and every
 * planned try (agent, pairing, try number, expectation). Not the run id, paths, lanes or jobs: shards
 * run on machines of different sizes.
 */
function planIdOf(scenario: Scenario, attempts: PlannedAttempt[], o: { tries: number; timeoutMs: number; internetHops: number }): string {
  const identity = {
    natmatrix: VERSION,
    scenario: scenario.name,
    ...o,
    holdMs: scenario.holdMs,
    keepaliveMs: scenario.keepaliveMs,
    agents: scenario.agents.map((x) => ({ name: x.name, verdict: x.verdict, timing: x.timing, strategy: x.strategy, services: x.services })),
    planned: attempts.map((x) => [x.agent, x.cell, x.a, x.b, x.try, x.expected]),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
}

/** The hosts of a lane: where its agents run. */
export function laneHosts(lane: Lane): string[] {
  return [lane.a.host, lane.b.host, ...[lane.a.host2, lane.b.host2].flatMap((h) => (h ? [h.ns] : []))];
}

/** The routers of a lane (each side's, and its home router on a two-layer side). */
export function laneRouters(lane: Lane): string[] {
  return [lane.a, lane.b].flatMap((s) => [s.router, ...(s.inner ? [s.inner.router] : [])]);
}

/** Every namespace the plan creates. */
export function planNamespaces(p: Plan): string[] {
  const site = (s: Side) => [s.router, ...(s.inner ? [s.inner.router] : []), s.host, ...(s.host2 ? [s.host2.ns] : [])];
  return [p.internet.ns, p.rendezvous.ns, ...p.lanes.flatMap((l) => [...site(l.a), ...site(l.b)])];
}

/** The shape written to topology.json: what a person needs to find and enter every node. */
export function topologyJson(p: Plan): object {
  return {
    runId: p.runId,
    scenario: p.scenario,
    internet: { namespace: p.internet.ns, bridge: p.internet.bridge, address: `${p.internet.ip}/${p.internet.prefix}` },
    rendezvous: { namespace: p.rendezvous.ns, address: `${p.rendezvous.ip}:${p.rendezvous.port}`, secondAddress: p.rendezvous.altIp, stunAddresses: [p.rendezvous.stunIp, p.rendezvous.stunAltIp] },
    lanes: p.lanes.map((l) => ({
      lane: l.index,
      a: sideJson(l.a),
      b: sideJson(l.b),
    })),
    namespaces: planNamespaces(p),
  };
}

function sideJson(s: Side) {
  return {
    router: { namespace: s.router, wan: `${s.wanIf} ${s.wanIp}/24`, lan: `${s.lanIf} ${s.lanIp}/${s.lanPrefix}` },
    ...(s.inner ? { homeRouter: { namespace: s.inner.router, wan: `wan ${s.inner.wanIp}/24`, lan: `lan ${s.inner.lanIp}/${s.inner.lanPrefix}` } } : {}),
    host: { namespace: s.host, address: `eth0 ${s.hostIp}/${s.lanPrefix}`, gateway: s.hostGateway, agentPort: s.hostPort, ...(s.publicIp ? { publicAddress: s.publicIp } : {}) },
    ...(s.host2 ? { secondHost: { namespace: s.host2.ns, address: `eth0 ${s.host2.ip}/${s.lanPrefix}`, agentPort: s.host2.port } } : {}),
  };
}

/** The public node's addresses: every service of the run (rendezvous, relay, STUN, TURN) listens on one of them. */
export function serviceAddresses(p: Plan): string[] {
  return [p.rendezvous.ip, p.rendezvous.altIp, p.rendezvous.stunIp, p.rendezvous.stunAltIp];
}

/**
 * How each peer of a try may see its partner (judge.ts checks every connected verdict against it): the
 * partner's outermost router's public address, a cloud host's own public address; on a same-site
 * pairing (both behind lane A's router) also the partner's LAN address, since a LAN path is direct too.
 */
export function partnerViews(p: Plan, lane: Lane, att: Pick<PlannedAttempt, 'sameSite' | 'natA' | 'natB'>): { a: PeerView; b: PeerView } {
  const services = serviceAddresses(p);
  const pub = (s: Side, nat: NatType) => [s.wanIp, ...(nat.publicIp && s.publicIp ? [s.publicIp] : [])];
  if (att.sameSite) {
    const host2 = lane.a.host2;
    return {
      a: { partner: 'b', addresses: [lane.a.wanIp, ...(host2 ? [host2.ip] : [])], services },
      b: { partner: 'a', addresses: [lane.a.wanIp, lane.a.hostIp], services },
    };
  }
  return {
    a: { partner: 'b', addresses: pub(lane.b, att.natB), services },
    b: { partner: 'a', addresses: pub(lane.a, att.natA), services },
  };
}
