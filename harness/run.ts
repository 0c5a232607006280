// run: Lab + plan → judged attempts. One rendezvous (and, when asked, one TLS relay) serves the whole run (peers are keyed by session);
// each lane takes the next attempt, resets its two routers (fresh ruleset, empty conntrack), starts both
// peers, waits for their verdicts and, when the try did not connect, keeps the routers' state as evidence.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { AgentCommands } from './agent.ts';
import { judgeCell, judgeTry, readVerdict } from './judge.ts';
import { FORWARD_ONLY, renderRuleset, type NatType } from './nat.ts';
import { systemTool } from './host.ts';
import { conntrackFlush, conntrackList, nftList, nftLoad, nsStart, sweepNamespaces } from './netns.ts';
import type { Proc, ProcOptions, ProcResult } from './proc.ts';
import type { Lab } from './lab.ts';
import { MAX_JOBS, partnerViews, type Lane, type Plan, type PlannedAttempt, type Side } from './plan.ts';
import { makeRelayCert } from './relay-cert.ts';
import type { Scenario } from './scenario.ts';
import type { Teardown } from './teardown.ts';
import type { AgentExit, Attempt, Cell, Report } from './types.ts';

/** How long a peer may wait for the rendezvous to pair it, after it started. */
export const PAIRING_WAIT_MS = 5000;
/** Slack on top of an agent's own budgets before the harness kills it as hung. */
const HANG_GRACE_MS = 1500;
const READY_TIMEOUT_MS = 5000;

export interface RunOptions {
  outDir: string;
  /** capture every try's packets on both routers' WAN and LAN (tcpdump) */
  pcap?: boolean;
  /** called after every finished attempt */
  onAttempt?: (done: number, total: number, attempt: Attempt) => void;
}

export interface RunResult {
  attempts: Attempt[];
  cells: Cell[];
  isolation: Report['isolation'];
}

/** A problem of the run itself rather than of one cell: a lane that cannot be built, a capture that won't start. */
export class RunError extends Error {
  override name = 'RunError';
}

function isReadyLine(line: string): boolean {
  try {
    return (JSON.parse(line) as { ready?: unknown }).ready === true;
  } catch {
    return false;
  }
}

// knobs put colons in type names ("full-cone:hairpin"); CI artifact uploads reject colons in paths
const safe = (name: string) => name.replace(/[^a-z0-9+._-]/gi, '_');
const cellDir = (a: string, b: string) => join('cells', `${safe(a)}-vs-${safe(b)}`);

function tail(text: string, lines = 3): string {
  return text.split('\n').filter(Boolean).slice(-lines).join('\n');
}

interface Service {
  address: string;
  /** why the service (rendezvous, relay) is unusable (it exited, or never got ready), or null while it is fine */
  problem: () => string | null;
}

export interface Daemon {
  pid: number | undefined;
  /** end it (its whole process group): `signal`, then SIGKILL after a grace */
  stop: Proc['stop'];
  /** resolves once the daemon said it is ready; rejects with why if it exits or stays silent first */
  ready: Promise<void>;
  done: Promise<ProcResult>;
}

/**
 * Start a process inside a namespace with its PID registered for teardown at once; the registration is
 * dropped the moment the process ends (its PID must not be signalled after that).
 */
export function startTracked(ns: string, argv: string[], opts: ProcOptions, teardown: Teardown, label: string): Proc {
  // every process is the leader of its own group: the deadline, stop() and teardown reach its whole tree
  const proc = nsStart(ns, argv, { ...opts, group: true });
  const pid = proc.pid;
  const release = pid === undefined ? () => {} : teardown.push(`stop ${label} (pid ${pid} and its process group)`, () => proc.stop());
  return {
    pid,
    stop: proc.stop,
    done: proc.done.then((r) => {
      release();
      return r;
    }),
  };
}

/**
 * Start a long-running process inside a namespace, its PID registered for teardown at once, and wait on
 * state rather than time: `ready` resolves when `isReady` holds for what it has printed so far on the
 * watched stream (a bound socket's ready line, tcpdump's "listening on").
 */
export function startDaemon(
  ns: string,
  argv: string[],
  o: { label: string; watch: 'stdout' | 'stderr'; isReady: (printed: string) => boolean; readyTimeoutMs: number; teardown: Teardown } & Omit<ProcOptions, 'onStdout' | 'onStderr'>,
): Daemon {
  let printed = '';
  let onReady = () => {};
  const watch = (chunk: string) => {
    printed += chunk;
    if (o.isReady(printed)) onReady();
  };
  const { pid, done, stop } = startTracked(ns, argv, { ...o, ...(o.watch === 'stdout' ? { onStdout: watch } : { onStderr: watch }) }, o.teardown, o.label);
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RunError(`${o.label} printed no ready line within ${o.readyTimeoutMs} ms`)), o.readyTimeoutMs);
    onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    void done.then((r) => {
      clearTimeout(timer);
      const how = r.spawnError ? `could not be started: ${r.spawnError.message}` : r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`;
      reject(new RunError(`${o.label} ${how}`));
    });
  });
  ready.catch(() => {});
  return { pid, ready, done, stop };
}

/** Start a public service of the run (the rendezvous, the relay) in the rendezvous namespace. Peers
 * retry, so attempts need not wait for it to be ready: a service that dies or never gets ready turns
 * every affected try into an `error` instead. */
function startService(lab: Lab, cmd: string[], name: string, env: Record<string, string>, outDir: string, teardown: Teardown): Service {
  const { rendezvous } = lab.plan;
  const d = startDaemon(rendezvous.ns, cmd, {
    label: `the ${name} agent`,
    env: { NMX_RUN: lab.plan.runId, ...env },
    stdoutFile: join(outDir, `${name}.stdout.log`),
    stderrFile: join(outDir, `${name}.stderr.log`),
    watch: 'stdout',
    isReady: (printed) => printed.split('\n').some(isReadyLine),
    readyTimeoutMs: READY_TIMEOUT_MS,
    teardown,
  });
  let problem: string | null = null;
  // it must not end before the run does: once it failed, every later try is an error that says why
  const broken = (e: Error) => (problem ??= `${e.message} (see ${name}.stderr.log)`);
  void d.ready.then(
    () => d.done.then((r) => broken(new Error(`the ${name} agent ${r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`}`))),
    broken,
  );
  return { address: env.NMX_LISTEN!, problem: () => problem };
}

function startRendezvous(lab: Lab, cmd: string[], secret: string, outDir: string, teardown: Teardown): Service {
  const { rendezvous } = lab.plan;
  const listen = `${rendezvous.ip}:${rendezvous.port}`;
  return startService(lab, cmd, 'rendezvous', { NMX_ROLE: 'rendezvous', NMX_LISTEN: listen, NMX_SECRET: secret }, outDir, teardown);
}

/** The relay's control port, and its pool of listening ports: one public + one reverse port per
 * server, enough for every lane of the largest run at once. */
export const RELAY_PORT = 12000;
export const RELAY_POOL = { first: 12100, last: 12100 + 2 * MAX_JOBS - 1 };

interface Relay extends Service {
  /** the CA the peers verify the relay's certificate with (it is its own self-signed certificate) */
  ca: string;
}

/** A TLS relay (agents/relay, the tx_tlsrelay protocol) with a certificate made for this run. */
async function startRelay(lab: Lab, cmd: string[], outDir: string, teardown: Teardown): Promise<Relay> {
  const { rendezvous } = lab.plan;
  const { cert, key } = await makeRelayCert(join(outDir, 'relay'), [rendezvous.ip]);
  const listen = `${rendezvous.ip}:${RELAY_PORT}`;
  const env = { NMX_ROLE: 'relay', NMX_LISTEN: listen, NMX_RELAY_CERT: cert, NMX_RELAY_KEY: key, NMX_RELAY_PORTS: `${RELAY_POOL.first}-${RELAY_POOL.last}` };
  return { ...startService(lab, cmd, 'relay', env, outDir, teardown), ca: cert };
}

/**
 * Give a side's routers the ruleset(s) of `nat` and empty conntrack tables. A double NAT puts its
 * carrier layer on the side's router and its home layer on the home router; a single NAT on a
 * two-layer side runs on the outer router while the home router only forwards.
 */
export async function resetRouter(side: Side, nat: NatType): Promise<void> {
  const carrier = nat.layers?.carrier ?? nat;
  const home = nat.layers?.home;
  if (home && !side.inner) throw new Error(`${nat.name} is a double NAT, but ${side.router} has no home router behind it`);
  const net = (ip: string, prefix: number) => `${ip.split('.').slice(0, 3).join('.')}.0/${prefix}`;
  const base = { WAN: side.wanIf, LAN: side.lanIf, HOST_IP: side.hostIp, HOST_PORT: side.hostPort, DMZ_PORT: side.dmzPort, ...(side.publicIp ? { PUBLIC_IP: side.publicIp } : {}) };
  const loads = [nftLoad(side.router, renderRuleset(carrier, { ...base, WAN_IP: side.wanIp, LAN_NET: net(side.lanIp, side.lanPrefix) }))];
  if (side.inner) {
    const vars = { ...base, WAN_IP: side.inner.wanIp, LAN_NET: net(side.inner.lanIp, side.inner.lanPrefix) };
    loads.push(nftLoad(side.inner.router, home ? renderRuleset(home, vars) : FORWARD_ONLY));
  }
  // new rulesets first (they flush the dynamic maps), then forget every NAT binding of the previous try
  await Promise.all(loads);
  await Promise.all([conntrackFlush(side.router), ...(side.inner ? [conntrackFlush(side.inner.router)] : [])]);
}

async function snapshotRouter(side: Side, dir: string): Promise<void> {
  const routers: Array<[string, string]> = [[side.router, `router-${side.role}`]];
  if (side.inner) routers.push([side.inner.router, `router-${side.role}-home`]);
  for (const [ns, name] of routers) {
    const [nft, ct] = await Promise.allSettled([nftList(ns), conntrackList(ns)]);
    const text = (r: PromiseSettledResult<string>) => (r.status === 'fulfilled' ? r.value + '\n' : `could not read: ${(r.reason as Error).message}\n`);
    writeFileSync(join(dir, `${name}.nft`), text(nft));
    writeFileSync(join(dir, `${name}.conntrack`), text(ct));
  }
}

/** The rendezvous's log lines about one session (it prefixes them with [session]), as evidence. */
function keepRendezvousLines(session: string, outDir: string, dir: string): void {
  let log = '';
  try {
    log = readFileSync(join(outDir, 'rendezvous.stderr.log'), 'utf8');
  } catch {
    /* no log (yet): nothing to keep */
  }
  const lines = log.split('\n').filter((l) => l.includes(`[${session}]`));
  writeFileSync(join(dir, 'rendezvous.log'), lines.length ? lines.join('\n') + '\n' : `no rendezvous log line mentions session ${session}\n`);
}

const CAPTURE_READY_MS = 5000;

/** Capture one router interface into router-<side>-<dev>.pcap; resolves, once tcpdump is listening,
 * to a function that stops it (SIGINT, so it flushes the file). */
async function startCapture(side: Side, dev: string, dir: string, teardown: Teardown): Promise<() => Promise<void>> {
  const name = `router-${side.role}-${dev}`;
  const argv = [systemTool('tcpdump'), '-i', dev, '-n', '-s', '0', '-U', '--immediate-mode', '-Z', 'root', '-w', join(dir, `${name}.pcap`)];
  const d = startDaemon(side.router, argv, {
    label: `tcpdump on ${side.router}/${dev}`,
    stderrFile: join(dir, `${name}.tcpdump.log`),
    watch: 'stderr',
    isReady: (printed) => printed.includes('listening on'),
    readyTimeoutMs: CAPTURE_READY_MS,
    teardown,
  });
  await d.ready;
  // SIGINT: tcpdump flushes the capture file and exits
  return () => d.stop('SIGINT');
}

interface AgentRun {
  plan: Plan;
  runId: string;
  cmd: string[];
  secret: string;
  rendezvous: string;
  timeoutMs: number;
  holdMs: number;
  keepaliveMs: number;
  /** when a still-running agent is killed as hung: its own budgets plus a grace */
  hardMs: number;
  outDir: string;
  teardown: Teardown;
  pcap: boolean;
  /** NMX_RELAY and NMX_RELAY_CA, when the scenario runs a relay */
  relay: { address: string; ca: string } | null;
}

/** A cloud-eip host's own public address, and its peer's public endpoint: known out of band, like a
 * cloud's metadata service and a DNS name (seed 000). */
function publicEnv(side: Side, nat: NatType, peer: Side, peerNat: NatType): Record<string, string> {
  return {
    ...(nat.publicIp && side.publicIp ? { NMX_PUBLIC_IP: side.publicIp } : {}),
    ...(peerNat.publicIp && peer.publicIp ? { NMX_PEER_PUBLIC: `${peer.publicIp}:${peer.hostPort}` } : {}),
  };
}

async function runPeer(side: Side, peer: Side, att: PlannedAttempt, dir: string, ctx: AgentRun): Promise<AgentExit> {
  const rel = relative(ctx.outDir, dir);
  const stdout = join(rel, `${side.role}.stdout`);
  const stderr = join(rel, `${side.role}.stderr`);
  const started = performance.now();
  const proc = startTracked(side.host, ctx.cmd, {
    env: {
      NMX_ROLE: side.role,
      NMX_RUN: ctx.runId,
      NMX_SESSION: att.session,
      NMX_RENDEZVOUS: ctx.rendezvous,
      NMX_SECRET: ctx.secret,
      NMX_LOCAL_PORT: String(side.hostPort),
      NMX_TIMEOUT_MS: String(ctx.timeoutMs),
      NMX_WAIT_MS: String(PAIRING_WAIT_MS),
      NMX_HOLD_MS: String(ctx.holdMs),
      NMX_KEEPALIVE_MS: String(ctx.keepaliveMs),
      NMX_NAT: side.role === 'a' ? att.a : att.b,
      ...(ctx.relay ? { NMX_RELAY: ctx.relay.address, NMX_RELAY_CA: ctx.relay.ca } : {}),
      ...(side.role === 'a' ? publicEnv(side, att.natA, peer, att.natB) : publicEnv(side, att.natB, peer, att.natA)),
    },
    stdoutFile: join(ctx.outDir, stdout),
    stderrFile: join(ctx.outDir, stderr),
    timeoutMs: ctx.hardMs,
    killGraceMs: 300,
    maxBuffer: 1_000_000,
  }, ctx.teardown, `agent ${side.role}`);
  const r = await proc.done;
  // the host's namespace is this agent's alone: anything still in it escaped the agent's process group
  // (setsid, a double fork) and is ended here, before the next try on this lane
  const escaped = await sweepNamespaces([side.host]);
  const out = r.stdout;
  const err = r.spawnError ? `cannot start ${ctx.cmd.join(' ')}: ${r.spawnError.message}` : r.stderr;
  const { verdict, problem } = readVerdict(out);
  return {
    role: side.role,
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    durationMs: Math.round(performance.now() - started),
    verdict,
    verdictProblem: r.overflow ? 'printed more than 1 MB on stdout or stderr' : problem,
    leftover: [...r.leftover, ...escaped.map((p) => p.name)],
    stderrTail: tail(err),
    stdout,
    stderr,
  };
}

/** Side B of a same-site pairing: the second host behind side A's router. */
function sameSitePeer(a: Side): Side {
  if (!a.host2) throw new RunError('a same-site pairing needs a second host on side A (plan it with a "same-site" column)');
  return { ...a, role: 'b', host: a.host2.ns, hostIp: a.host2.ip, hostPort: a.host2.port };
}

function notStarted(role: 'a' | 'b'): AgentExit {
  return { role, exitCode: null, signal: null, timedOut: false, durationMs: 0, verdict: null, verdictProblem: 'not started', leftover: [], stderrTail: '', stdout: '', stderr: '' };
}

async function runAttempt(lane: Lane, att: PlannedAttempt, ctx: AgentRun, services: Service[]): Promise<Attempt> {
  const dir = join(ctx.outDir, cellDir(att.a, att.b), `try-${att.try}`);
  mkdirSync(dir, { recursive: true });
  const evidence = relative(ctx.outDir, dir);
  const problems = () => services.map((x) => x.problem()).filter((p): p is string => p !== null).join('; ') || null;
  const before = problems();
  if (before) {
    // no rendezvous, no pairing: don't spend a pairing wait per try finding that out again
    const none = { path: null, timeToDirectMs: null };
    return { a: att.a, b: att.b, try: att.try, lane: lane.index, outcome: 'error', reason: `not run: ${before}`, notes: [], ...none, agents: { a: notStarted('a'), b: notStarted('b') }, evidence };
  }
  // same site: B is the second host behind A's router, and B's own router sits this try out
  const sideB: Side = att.sameSite ? sameSitePeer(lane.a) : lane.b;
  const routers = att.sameSite ? [lane.a] : [lane.a, lane.b];
  await Promise.all([resetRouter(lane.a, att.natA), ...(att.sameSite ? [] : [resetRouter(lane.b, att.natB)])]);
  const captures = ctx.pcap ? await Promise.all(routers.flatMap((s) => [s.wanIf, s.lanIf].map((dev) => startCapture(s, dev, dir, ctx.teardown)))) : [];
  const [ea, eb] = await Promise.all([runPeer(lane.a, sideB, att, dir, ctx), runPeer(sideB, lane.a, att, dir, ctx)]);
  await Promise.all(captures.map((stop) => stop()));
  let verdict = judgeTry(ea, eb, ctx.hardMs, partnerViews(ctx.plan, lane, att));
  const rdvProblem = problems();
  const connected = verdict.outcome === 'direct' || verdict.outcome === 'relayed';
  if (rdvProblem && !connected) verdict = { ...verdict, outcome: 'error', reason: `${rdvProblem}; ${verdict.reason}` };
  // evidence for everything but a plain direct path (a relayed try shows why it was not direct)
  if (verdict.outcome !== 'direct') {
    await Promise.all(routers.map((s) => snapshotRouter(s, dir)));
    keepRendezvousLines(att.session, ctx.outDir, dir);
  }
  return {
    a: att.a,
    b: att.b,
    try: att.try,
    lane: lane.index,
    ...verdict,
    agents: { a: ea, b: eb },
    evidence,
  };
}

/** Run every planned attempt on the lab's lanes and judge the cells. */
export async function runAttempts(lab: Lab, scenario: Scenario, agents: AgentCommands, teardown: Teardown, opts: RunOptions): Promise<RunResult> {
  const { plan } = lab;
  const secret = randomBytes(16).toString('hex');
  const { peer: peerCmd, rendezvous: rdvCmd } = agents;
  const rdv = startRendezvous(lab, rdvCmd, secret, opts.outDir, teardown);
  if (scenario.relay && !agents.relay) throw new RunError(`scenario ${scenario.name} needs a relay, and no relay command was given`);
  const relay = scenario.relay ? await startRelay(lab, agents.relay!, opts.outDir, teardown) : null;
  // an agent with a strategy of N steps gets a punch window per step
  const steps = scenario.strategy?.length ?? 1;
  const ctx: AgentRun = {
    plan,
    relay: relay ? { address: relay.address, ca: relay.ca } : null,
    pcap: opts.pcap ?? false,
    runId: plan.runId,
    cmd: peerCmd,
    secret,
    rendezvous: rdv.address,
    timeoutMs: plan.timeoutMs,
    holdMs: plan.holdMs,
    keepaliveMs: plan.keepaliveMs,
    // a held path is re-checked after the hold: one more punch window
    hardMs: PAIRING_WAIT_MS + steps * plan.timeoutMs + (plan.holdMs > 0 ? plan.holdMs + plan.timeoutMs : 0) + HANG_GRACE_MS,
    outDir: opts.outDir,
    teardown,
  };

  const queue = [...plan.attempts];
  const attempts: Attempt[] = [];
  await Promise.all(
    plan.lanes.map(async (lane) => {
      try {
        await lab.laneReady(lane.index);
      } catch (cause) {
        if (teardown.closing) return;
        throw new RunError(`could not build lane ${lane.index}: ${(cause as Error).message}`, { cause });
      }
      for (let att = queue.shift(); att && !teardown.closing; att = queue.shift()) {
        let result: Attempt;
        try {
          result = await runAttempt(lane, att, ctx, relay ? [rdv, relay] : [rdv]);
        } catch (cause) {
          if (teardown.closing) return;
          throw new RunError(`lane ${lane.index} failed while running ${att.a} × ${att.b}: ${(cause as Error).message}`, { cause });
        }
        attempts.push(result);
        opts.onAttempt?.(attempts.length, plan.attempts.length, result);
      }
    }),
  );

  const cells: Cell[] = [];
  for (const a of scenario.a) {
    for (const b of scenario.b) {
      const tries = attempts.filter((t) => t.a === a && t.b === b).sort((x, y) => x.try - y.try);
      const expected = plan.attempts.find((t) => t.a === a && t.b === b)!.expected;
      cells.push(judgeCell(a, b, expected, tries, cellDir(a, b)));
    }
  }
  return { attempts, cells, isolation: { enforced: lab.isolated, crossLaneDrops: await lab.crossLaneDrops().catch(() => ({})) } };
}
