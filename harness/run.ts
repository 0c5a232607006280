// run: Lab + plan → judged attempts. The run's services start first (services.ts: each agent's
// rendezvous at its scope, the relay, STUN/TURN); each lane then takes the next attempt, resets its
// routers (fresh ruleset, empty conntrack), starts both peers of the attempt's agent, ends the try when
// the side(s) that decide have spoken (or at the hard deadline), judges it and, when it did not connect,
// keeps the routers' state as evidence.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { agentCommand } from './agent.ts';
import { hardDeadlineMs, peerLaunch, RELAY_AGENT, serviceEnv, type RunnableAgent } from './agent-env.ts';
import type { PeerEnv } from './contract.ts';
import { RunError } from './errors.ts';
import { judgeCell, judgeTry, readVerdict, triesByCell } from './judge.ts';
import type { Lab } from './lab.ts';
import type { AgentSpec, ServiceName } from './manifest.ts';
import { sweepNamespaces } from './netns.ts';
import { laneHosts, laneRouters, partnerViews, type Lane, type Plan, type PlannedAttempt, type Side } from './plan.ts';
import { resetRouter, RouterHelpers, snapshotRouter, startCapture } from './router.ts';
import { AgentServer, ServerPool } from './serve.ts';
import { Rendezvous, startRelay, startStunTurn, type RendezvousLease } from './services.ts';
import { startTracked } from './supervise.ts';
import type { Teardown } from './teardown.ts';
import type { AgentExit, Attempt, Cell, Report } from './types.ts';

export { RunError };

/** How long the side that does not decide may take to end once the deciding side has spoken. */
const STOP_GRACE_MS = 300;

export interface RunOptions {
  outDir: string;
  /** capture every try's packets on both routers' WAN and LAN (tcpdump) */
  pcap?: boolean;
  /** called after every finished attempt */
  onAttempt?: (done: number, total: number, attempt: Attempt) => void;
  /** an adaptive run's next round, given every try so far (adaptive.ts): none ends the run */
  more?: (attempts: Attempt[]) => PlannedAttempt[];
}

export interface RunResult {
  attempts: Attempt[];
  cells: Cell[];
  isolation: Report['isolation'];
}

// knobs put colons in type names ("full-cone:hairpin"); CI artifact uploads reject colons in paths
const safe = (name: string) => name.replace(/[^a-z0-9+._-]/gi, '_');
/** cells/<a>-vs-<b>, or cells/<agent>/<a>-vs-<b> when several agents share the run */
export const cellDir = (a: string, b: string, agent: string | null = null) => join('cells', ...(agent ? [safe(agent)] : []), `${safe(a)}-vs-${safe(b)}`);

function tail(text: string, lines = 3): string {
  return text.split('\n').filter(Boolean).slice(-lines).join('\n');
}

/** The copy of the run's rendezvous log lines about one session (prefixed [session]), as evidence. */
function keepRendezvousLines(session: string, log: string, outDir: string, dir: string): void {
  let text = '';
  try {
    text = readFileSync(join(outDir, log), 'utf8');
  } catch {
    /* no log (yet): nothing to keep */
  }
  const lines = text.split('\n').filter((l) => l.includes(`[${session}]`));
  writeFileSync(join(dir, 'rendezvous.log'), lines.length ? lines.join('\n') + '\n' : `no line of ${log} mentions session ${session}\n`);
}

/** Everything one agent's tries share. */
interface AgentRun {
  index: number;
  agent: RunnableAgent;
  rendezvous: Rendezvous | null;
  /** when a still-running peer is killed as hung: its own budgets plus a grace */
  hardMs: number;
  /** NMX_* the agent's services add (relay, STUN, TURN) */
  serviceEnv: PeerEnv;
}

interface RunContext {
  plan: Plan;
  secret: string;
  outDir: string;
  teardown: Teardown;
  pcap: boolean;
  /** the run's services' problems (a dead relay): tries of agents that use them become errors */
  serviceProblems: (agent: AgentSpec) => string | null;
  /** the processes of agents that serve many tries, by agent and host */
  servers: ServerPool;
  /** the routers' helpers (resets and snapshots without a spawn per try) */
  routers: RouterHelpers;
}

interface Peer {
  stop: () => Promise<void>;
  /** the agent has ended (by itself or stopped) and its exit is read */
  done: Promise<AgentExit>;
  /** ended by the harness because the deciding side had spoken */
  stopped: () => boolean;
}

/** What either way of running a peer starts from: its evidence files, command and launch. */
function peerStart(side: Side, peer: Side, att: PlannedAttempt, dir: string, rdv: RendezvousLease | null, run: AgentRun, ctx: RunContext) {
  const rel = relative(ctx.outDir, dir);
  const { spec } = run.agent;
  return {
    stdout: join(rel, `${side.role}.stdout`),
    stderr: join(rel, `${side.role}.stderr`),
    spec,
    cmd: run.agent.peer[side.role],
    started: performance.now(),
    launch: peerLaunch({ side, peer, att, rendezvous: rdv?.address ?? null, secret: ctx.secret, plan: ctx.plan, spec, hardMs: run.hardMs, serviceEnv: run.serviceEnv, confine: run.agent.confine }),
  };
}

function startPeer(side: Side, peer: Side, att: PlannedAttempt, dir: string, rdv: RendezvousLease | null, run: AgentRun, ctx: RunContext): Peer {
  const { stdout, stderr, cmd, started, launch } = peerStart(side, peer, att, dir, rdv, run, ctx);
  const proc = startTracked(side.host, cmd, {
    env: launch.env,
    confine: launch.confine,
    stdoutFile: join(ctx.outDir, stdout),
    stderrFile: join(ctx.outDir, stderr),
    timeoutMs: run.hardMs,
    killGraceMs: 300,
    maxBuffer: 1_000_000,
  }, ctx.teardown, `agent ${side.role}`);
  let stopped = false;
  const done = (async (): Promise<AgentExit> => {
    const r = await proc.done;
    // anything still in the host's namespace escaped the agent's process group (setsid, a double fork)
    // and is ended here, before the next try on this lane; but for the serving processes of the run's
    // other agents, idle between their tries
    const escaped = await sweepNamespaces([side.host], 300, ctx.servers.groupsOn(side.host));
    const err = r.spawnError ? `cannot start ${cmd.join(' ')}: ${r.spawnError.message}` : r.stderr;
    const { verdict, problem } = readVerdict(r.stdout);
    return {
      role: side.role,
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut: r.timedOut,
      stopped,
      durationMs: Math.round(performance.now() - started),
      verdict,
      verdictProblem: r.overflow ? 'printed more than 1 MB on stdout or stderr' : problem,
      leftover: [...r.leftover, ...escaped.map((p) => p.name)],
      stderrTail: tail(err),
      stdout,
      stderr,
    };
  })();
  return {
    stop: async () => {
      stopped = true;
      await proc.stop();
    },
    done,
    stopped: () => stopped,
  };
}

/** A count-down both peers of a try arrive at, ready or not: `all` resolves to whether every one was. */
function barrier(n: number): { arrive: (ready: boolean) => void; all: Promise<boolean> } {
  let open = (_: boolean) => {};
  let allReady = true;
  const all = new Promise<boolean>((resolve) => (open = resolve));
  return {
    arrive: (ready) => {
      allReady &&= ready;
      if (--n === 0) open(allReady);
    },
    all,
  };
}

/**
 * A peer of an agent that serves many tries (serve.ts): its host's server runs the try. Both peers'
 * tries are sent once both servers are ready (`both`): a server's start-up (a lane's first try, or a
 * restart) must not give one side a head start the other's pairing wait does not cover.
 */
function servePeer(side: Side, peer: Side, att: PlannedAttempt, dir: string, rdv: RendezvousLease | null, run: AgentRun, ctx: RunContext, both: ReturnType<typeof barrier>): Peer {
  const { stdout, stderr, spec, cmd, started, launch } = peerStart(side, peer, att, dir, rdv, run, ctx);
  const serverFor = () => ctx.servers.get(run.index, side.host, (restarts) => {
    mkdirSync(join(ctx.outDir, 'serve'), { recursive: true });
    // serve/<agent>-<node>.stderr: what the server logged outside its tries too (.2, .3, … after a restart)
    const node = side.host.slice(side.host.lastIndexOf('-') + 1);
    const logFile = join(ctx.outDir, 'serve', `${safe(spec.name)}-${node}${restarts ? `.${restarts + 1}` : ''}.stderr`);
    const base: PeerEnv = { NMX_ROLE: side.role, NMX_RUN: ctx.plan.runId };
    return new AgentServer(side.host, cmd, { env: base as Record<string, string>, confine: launch.confine, logFile, label: `agent ${spec.name} serving ${side.host}`, teardown: ctx.teardown });
  });
  let stopped = false;
  let stopTry = () => {};
  const exit = (x: Partial<AgentExit>): AgentExit => ({
    role: side.role, exitCode: null, signal: null, timedOut: false, stopped, durationMs: Math.round(performance.now() - started),
    verdict: null, verdictProblem: null, leftover: [], stderrTail: '', stdout, stderr, ...x,
  });
  const done = (async (): Promise<AgentExit> => {
    const server = await serverFor();
    const notRun = (problem: string) => {
      writeFileSync(join(ctx.outDir, stderr), `${problem}\n`);
      writeFileSync(join(ctx.outDir, stdout), '');
      return exit({ problem, stderrTail: problem });
    };
    try {
      await server.ready;
    } catch (cause) {
      both.arrive(false);
      return notRun(`could not start serving: ${(cause as Error).message}`);
    }
    both.arrive(true);
    // the other side's process could not start: a try of one side alone would only wait out its pairing
    if (!(await both.all)) return notRun('was not given the try: the other side\'s serving process could not start');
    // the try's clock starts now, as a one-shot agent's starts when its confinement is in place
    const env: PeerEnv = { ...launch.env, NMX_SPAWNED_AT_MS: String(Date.now()) };
    const t = server.runTry(`${att.session}/${side.role}`, env, run.hardMs);
    stopTry = t.stop;
    if (stopped) t.stop();
    const r = await t.done;
    const escaped = await sweepNamespaces([side.host], 300, ctx.servers.groupsOn(side.host));
    // the evidence is what a one-shot peer would have printed: its verdict line
    writeFileSync(join(ctx.outDir, stdout), r.reply?.verdict ? `${JSON.stringify(r.reply.verdict)}\n` : r.replyLine ? `${r.replyLine}\n` : '');
    writeFileSync(join(ctx.outDir, stderr), r.stderr);
    const read = r.reply?.verdict === undefined ? { verdict: null, problem: r.reply ? 'replied with no verdict' : null } : readVerdict(JSON.stringify(r.reply.verdict));
    return exit({
      exitCode: r.reply?.exit ?? r.ended?.exitCode ?? null,
      signal: r.ended?.signal ?? (r.timedOut ? 'SIGTERM' : null),
      timedOut: r.timedOut,
      verdict: read.verdict,
      verdictProblem: read.problem,
      ...(r.problem && !r.timedOut ? { problem: r.problem } : {}),
      leftover: escaped.map((p) => p.name),
      stderrTail: tail(r.stderr),
    });
  })();
  return {
    stop: async () => {
      stopped = true;
      stopTry();
      await done.catch(() => {});
    },
    done,
    stopped: () => stopped,
  };
}

/** Side B of a same-site pairing: the second host behind side A's router. */
function sameSitePeer(a: Side): Side {
  if (!a.host2) throw new RunError('a same-site pairing needs a second host on side A (plan it with a "same-site" column)');
  return { ...a, role: 'b', host: a.host2.ns, hostIp: a.host2.ip, hostPort: a.host2.port };
}

function notStarted(role: 'a' | 'b'): AgentExit {
  return { role, exitCode: null, signal: null, timedOut: false, stopped: false, durationMs: 0, verdict: null, verdictProblem: 'not started', leftover: [], stderrTail: '', stdout: '', stderr: '' };
}

/** A connected verdict ended a peer: exit 0 with ok true. */
const connectedExit = (x: AgentExit) => x.exitCode === 0 && x.verdict?.ok === true;

async function runAttempt(lane: Lane, att: PlannedAttempt, run: AgentRun, ctx: RunContext): Promise<Attempt> {
  const name = run.agent.spec.name;
  const cell = cellDir(att.a, att.b, ctx.plan.agents > 1 ? name : null);
  const dir = join(ctx.outDir, cell, `try-${att.try}`);
  mkdirSync(dir, { recursive: true });
  const evidence = relative(ctx.outDir, dir);
  const base = { agent: name, cell: att.cell, a: att.a, b: att.b, try: att.try, lane: lane.index, evidence };
  const rdv = run.rendezvous ? await run.rendezvous.lease(lane.index, join(evidence, 'rendezvous')) : null;
  try {
    const problems = () => [rdv?.problem() ?? null, ctx.serviceProblems(run.agent.spec)].filter((p): p is string => p !== null).join('; ') || null;
    const before = problems();
    if (before) {
      // no rendezvous, no pairing: don't spend a pairing wait per try finding that out again
      return { ...base, outcome: 'error', reason: `not run: ${before}`, notes: [], path: null, timeToDirectMs: null, agents: { a: notStarted('a'), b: notStarted('b') } };
    }
    // same site: B is the second host behind A's router, and B's own router sits this try out
    const sideB: Side = att.sameSite ? sameSitePeer(lane.a) : lane.b;
    const routers = att.sameSite ? [lane.a] : [lane.a, lane.b];
    await Promise.all([resetRouter(lane.a, att.natA, ctx.routers), ...(att.sameSite ? [] : [resetRouter(lane.b, att.natB, ctx.routers)])]);
    const captures = ctx.pcap ? await Promise.all(routers.flatMap((s) => [s.wanIf, s.lanIf].map((dev) => startCapture(s, dev, dir, ctx.teardown)))) : [];
    const both = barrier(2);
    const start = run.agent.spec.serve ? servePeer : startPeer;
    const pa = start(lane.a, sideB, att, dir, rdv, run, ctx, both);
    const pb = start(sideB, lane.a, att, dir, rdv, run, ctx, both);
    // the side that decides has spoken: the other need not wait out its budget
    const rule = run.agent.spec.verdict;
    const endOther = (other: Peer) => () => void other.stop();
    if (rule === 'a') void pa.done.then(endOther(pb));
    if (rule === 'b') void pb.done.then(endOther(pa));
    if (rule === 'either') {
      void pa.done.then((x) => connectedExit(x) && endOther(pb)());
      void pb.done.then((x) => connectedExit(x) && endOther(pa)());
    }
    const [ea, eb] = await Promise.all([pa.done, pb.done]);
    await Promise.all(captures.map((stop) => stop()));
    const { spec } = run.agent;
    const views = spec.peerCheck ? partnerViews(ctx.plan, lane, att) : undefined;
    let verdict = judgeTry(ea, eb, run.hardMs, views, { rule, measuredTime: spec.timing.mode === 'budget' });
    const after = problems();
    const connected = verdict.outcome === 'direct' || verdict.outcome === 'relayed';
    if (after && !connected) verdict = { ...verdict, outcome: 'error', reason: `${after}; ${verdict.reason}` };
    // evidence for everything but a plain direct path (a relayed try shows why it was not direct)
    if (verdict.outcome !== 'direct') {
      await Promise.all(routers.map((s) => snapshotRouter(s, dir, ctx.routers)));
      // a per-try rendezvous logs into the try folder already
      if (rdv && !rdv.log.startsWith(evidence)) keepRendezvousLines(att.session, rdv.log, ctx.outDir, dir);
    }
    return { ...base, ...verdict, agents: { a: ea, b: eb } };
  } finally {
    await rdv?.release();
  }
}

/**
 * The plan's cells, in plan order (agent, row, column), each judged from its own tries: a try belongs
 * to the cell it was planned for (its `cell`), never to one that merely has the same names.
 */
export function judgeCells(plan: Pick<Plan, 'attempts' | 'agents'>, attempts: Attempt[], agentNames: string[]): Cell[] {
  const planned = new Map<number, PlannedAttempt>();
  for (const t of plan.attempts) if (!planned.has(t.cell)) planned.set(t.cell, t);
  const tries = triesByCell(attempts);
  return [...planned.values()]
    .sort((x, y) => x.cell - y.cell)
    .map((first) => {
      const name = agentNames[first.agent]!;
      const own = (tries.get(first.cell) ?? []).sort((p, q) => p.try - q.try);
      return judgeCell(first.a, first.b, first.expected, own, cellDir(first.a, first.b, plan.agents > 1 ? name : null), name);
    });
}

/**
 * The tries still to run, shared by the lanes: the plan's, then — in an adaptive run — further rounds,
 * each decided by `more` once every try of the round before has finished (a lane with nothing to take
 * waits for that decision rather than closing down).
 */
export class WorkQueue {
  private readonly queue: PlannedAttempt[];
  private running = 0;
  private waiting: Array<() => void> = [];
  private done = false;
  /** tries so far, planned and added */
  total: number;

  constructor(first: readonly PlannedAttempt[], private readonly more?: () => PlannedAttempt[]) {
    this.queue = [...first];
    this.total = first.length;
  }

  /** The next try to run, or undefined when there is none (and will be none). */
  async take(closing: () => boolean): Promise<PlannedAttempt | undefined> {
    for (;;) {
      if (this.done || closing()) return undefined;
      const att = this.queue.shift();
      if (att) {
        this.running++;
        return att;
      }
      if (this.running === 0) {
        const next = this.more?.() ?? [];
        if (next.length === 0) {
          this.done = true;
          this.wake();
          return undefined;
        }
        this.queue.push(...next);
        this.total += next.length;
        this.wake();
        continue;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  /** A try taken has finished. */
  finished(): void {
    this.running--;
    // the lanes waiting look again: for the next round, or to find the run closing
    if (this.running === 0) this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resume of waiting) resume();
  }
}

/** Run every planned attempt on the lab's lanes and judge the cells. */
export async function runAttempts(lab: Lab, agents: RunnableAgent[], teardown: Teardown, opts: RunOptions): Promise<RunResult> {
  const { plan } = lab;
  const secret = randomBytes(16).toString('hex');
  const needs = (s: ServiceName) => agents.some((x) => x.spec.services.includes(s));
  // services first, beside the lane builds: the rendezvous instances of every agent, the relay, STUN/TURN
  const rendezvous = agents.map((x, k) => (x.rendezvous ? new Rendezvous(lab, k, x.spec, x.rendezvous, x.confine, secret, opts.outDir, teardown) : null));
  const [relay, stunTurn] = await Promise.all([
    needs('relay') ? agentCommand(RELAY_AGENT).then((cmd) => startRelay(lab, cmd, opts.outDir, teardown)) : null,
    needs('stun') || needs('turn') ? startStunTurn(lab, needs('turn'), opts.outDir, teardown) : null,
  ]);
  const runs: AgentRun[] = agents.map((agent, index) => ({
    index,
    agent,
    rendezvous: rendezvous[index]!,
    hardMs: hardDeadlineMs(agent.spec, plan),
    serviceEnv: serviceEnv(agent.spec, relay, stunTurn),
  }));
  const ctx: RunContext = {
    plan,
    secret,
    outDir: opts.outDir,
    teardown,
    pcap: opts.pcap ?? false,
    serviceProblems: (spec) => (spec.services.includes('relay') ? (relay?.problem() ?? null) : null),
    servers: new ServerPool(),
    routers: new RouterHelpers(join(opts.outDir, 'rulesets'), teardown),
  };

  const attempts: Attempt[] = [];
  const more = opts.more;
  const work = new WorkQueue(plan.attempts, more ? () => more(attempts) : undefined);
  const closing = () => teardown.closing;
  await Promise.all(
    plan.lanes.map(async (lane) => {
      try {
        await lab.laneReady(lane.index);
      } catch (cause) {
        if (teardown.closing) return;
        throw new RunError(`could not build lane ${lane.index}: ${(cause as Error).message}`, { cause });
      }
      for (let att = await work.take(closing); att; att = await work.take(closing)) {
        let result: Attempt;
        try {
          result = await runAttempt(lane, att, runs[att.agent]!, ctx);
        } catch (cause) {
          work.finished();
          if (teardown.closing) return;
          throw new RunError(`lane ${lane.index} failed while running ${att.a} × ${att.b}: ${(cause as Error).message}`, { cause });
        }
        attempts.push(result);
        work.finished();
        opts.onAttempt?.(attempts.length, work.total, result);
      }
      // the lane is done: its serving agents and router helpers may go
      await Promise.all([ctx.servers.close(laneHosts(lane)), ctx.routers.close(laneRouters(lane))]);
    }),
  );
  await Promise.all([ctx.servers.close(), ctx.routers.close()]);

  const cells = judgeCells(plan, attempts, agents.map((x) => x.spec.name));
  const drops = await lab.bridgeDrops().catch(() => ({ crossLane: {}, lowTtl: 0 }));
  return { attempts, cells, isolation: { enforced: lab.isolated, crossLaneDrops: drops.crossLane, internetHops: plan.internetHops, lowTtlDrops: drops.lowTtl } };
}
