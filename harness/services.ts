// The run's services, all in the public node (nmx-<run>-rdv), all process trees under supervision:
//
//   203.0.113.10  :3478+k       rendezvous of agent k, scope "run"  (one for every pairing)
//                 :13000+100k+L rendezvous of agent k for lane L, scope "lane" (or a fresh one per try, "try")
//                 :12000        TLS relay control port (agents/relay), pool 12100–12299
//   203.0.113.12  :3478 / :3479 STUN and TURN (coturn), per-run credentials; RFC 5780's other address is
//   203.0.113.13  :3478 / :3479 the second IP with the other port
//
// A service that exits or never says it is ready does not stop the run: every try that needs it from then
// on is an `error` that says why (rendezvous and relay), or the run stops with one clear line when it
// cannot start at all (STUN/TURN).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RunError } from './errors.ts';
import { systemTool } from './host.ts';
import type { Lab } from './lab.ts';
import type { RelayEnv, RendezvousEnv } from './contract.ts';
import type { AgentSpec, RendezvousScope } from './manifest.ts';
import { nsRun } from './netns.ts';
import { MAX_JOBS, type Plan } from './plan.ts';
import { giveFiles, reveals, type Confinement } from './confine.ts';
import { makeRelayCert } from './relay-cert.ts';
import { isReadyLine, startDaemon, type Daemon } from './supervise.ts';
import type { Teardown } from './teardown.ts';

/** A loaded machine can take seconds to start a Node service (10 s seen with load 20 on 2 cores); a
 * service silent this long is broken. */
const READY_TIMEOUT_MS = 30_000;

export interface Service {
  /** ip:port peers reach it at */
  address: string;
  /** resolves once it is ready, or once it is known it never will be (then problem() says why) */
  settled: Promise<void>;
  /** why it is unusable (it exited, or never got ready), or null while it is fine */
  problem: () => string | null;
  /** its stderr log, relative to the run folder */
  log: string;
  stop: () => Promise<void>;
}

/** Start a service agent in the public node; `logs` is the run-folder-relative path prefix of its logs. */
function startService(lab: Lab, cmd: string[], label: string, env: Omit<RendezvousEnv | RelayEnv, 'NMX_RUN'>, outDir: string, logs: string, teardown: Teardown, confine: Confinement | null): Service {
  const d: Daemon = startDaemon(lab.plan.rendezvous.ns, cmd, {
    label: `the ${label}`,
    env: { NMX_RUN: lab.plan.runId, ...env } as Record<string, string>,
    confine,
    stdoutFile: join(outDir, `${logs}.stdout.log`),
    stderrFile: join(outDir, `${logs}.stderr.log`),
    watch: 'stdout',
    isReady: (printed) => printed.split('\n').some(isReadyLine),
    readyTimeoutMs: READY_TIMEOUT_MS,
    teardown,
  });
  let problem: string | null = null;
  let stopping = false;
  // it must not end before its scope does: once it failed, every later try is an error that says why
  const broken = (e: Error) => (problem ??= `${e.message} (see ${logs}.stderr.log)`);
  const settled = d.ready.then(
    () => {
      void d.done.then((r) => {
        if (!stopping) broken(new Error(`the ${label} ${r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`}`));
      });
    },
    broken,
  ).then(() => {});
  return {
    address: env.NMX_LISTEN,
    settled,
    problem: () => problem,
    log: `${logs}.stderr.log`,
    stop: async () => {
      stopping = true;
      await d.stop();
    },
  };
}

/** The port of agent k's rendezvous: one per run, or one per lane (a per-try one reuses its lane's). */
export function rendezvousPort(agentIndex: number, scope: RendezvousScope, lane: number): number {
  return scope === 'run' ? 3478 + 10 * agentIndex : 13_000 + 100 * agentIndex + lane;
}

/** Where a try's peers find their rendezvous, and where its log is (run-folder-relative). */
export interface RendezvousLease {
  address: string;
  problem: () => string | null;
  log: string;
  /** the try is over: a per-try rendezvous ends, the others stay */
  release: () => Promise<void>;
}

/**
 * The rendezvous instances of one agent, at its scope. "run" and "lane" instances start at once (beside
 * the lane builds); a "try" instance starts for its try, which waits until it is ready (a third-party
 * server's clients may not retry), and ends with it.
 */
export class Rendezvous {
  private readonly byLane = new Map<number, Service>();
  private readonly shared: Service | null = null;

  constructor(
    private readonly lab: Lab,
    private readonly agentIndex: number,
    private readonly agent: AgentSpec,
    private readonly cmd: string[],
    /** how the agent's processes are confined (runnableAgents worked it out once); null: privileged */
    private readonly confine: Confinement | null,
    private readonly secret: string,
    private readonly outDir: string,
    private readonly teardown: Teardown,
  ) {
    const scope = agent.rendezvousScope;
    if (scope === 'run') this.shared = this.start(rendezvousPort(agentIndex, 'run', 0), this.logName(null));
    if (scope === 'lane') for (const l of lab.plan.lanes) this.byLane.set(l.index, this.start(rendezvousPort(agentIndex, 'lane', l.index), this.logName(l.index)));
  }

  private logName(lane: number | null): string {
    const agent = this.lab.plan.agents > 1 ? `-${this.agent.name}` : '';
    return `rendezvous${agent}${lane === null ? '' : `-lane${lane}`}`;
  }

  private start(port: number, logs: string): Service {
    const listen = `${this.lab.plan.rendezvous.ip}:${port}`;
    const env = { NMX_ROLE: 'rendezvous', NMX_LISTEN: listen, NMX_SECRET: this.secret };
    // the rendezvous is the agent's code: confined like its peers, unless the agent is privileged
    return startService(this.lab, this.cmd, `rendezvous agent${this.lab.plan.agents > 1 ? ` of ${this.agent.name}` : ''}`, env, this.outDir, logs, this.teardown, this.confine);
  }

  /** Every instance started so far is settled (ready, or known broken). */
  async settled(): Promise<void> {
    await Promise.all([this.shared, ...this.byLane.values()].map((s) => s?.settled));
  }

  /** The rendezvous for a try on `lane`; `tryLogs` is the run-folder-relative prefix of a per-try one's logs. */
  async lease(lane: number, tryLogs: string): Promise<RendezvousLease> {
    const keep = async () => {};
    if (this.shared) {
      await this.shared.settled;
      return { address: this.shared.address, problem: this.shared.problem, log: this.shared.log, release: keep };
    }
    const mine = this.byLane.get(lane);
    if (mine) {
      await mine.settled;
      return { address: mine.address, problem: mine.problem, log: mine.log, release: keep };
    }
    const fresh = this.start(rendezvousPort(this.agentIndex, 'try', lane), tryLogs);
    await fresh.settled;
    return { address: fresh.address, problem: fresh.problem, log: fresh.log, release: fresh.stop };
  }
}

/** The relay's control port, and its pool of listening ports: one public + one reverse port per
 * server, enough for every lane of the largest run at once. */
export const RELAY_PORT = 12000;
export const RELAY_POOL = { first: 12100, last: 12100 + 2 * MAX_JOBS - 1 };

export interface Relay extends Service {
  /** the CA the peers verify the relay's certificate with (it is its own self-signed certificate) */
  ca: string;
  /** the run's relay credential: a server's control connection must prove it (`auth SECRET`) */
  secret: string;
}

/** A TLS relay (agents/relay, the tx_tlsrelay protocol) with a certificate and a credential made for this run. */
export async function startRelay(lab: Lab, cmd: string[], outDir: string, teardown: Teardown): Promise<Relay> {
  const { rendezvous } = lab.plan;
  const { cert, key } = await makeRelayCert(join(outDir, 'relay'), [rendezvous.ip]);
  const listen = `${rendezvous.ip}:${RELAY_PORT}`;
  const secret = randomBytes(16).toString('hex');
  // confined too, its certificate and key given to it as private copies (the run folder is not its)
  const given = giveFiles({ NMX_RELAY_CERT: cert, NMX_RELAY_KEY: key }, ['NMX_RELAY_CERT', 'NMX_RELAY_KEY']);
  const env = { NMX_ROLE: 'relay', NMX_LISTEN: listen, NMX_RELAY_CERT: given.env.NMX_RELAY_CERT!, NMX_RELAY_KEY: given.env.NMX_RELAY_KEY!, NMX_RELAY_PORTS: `${RELAY_POOL.first}-${RELAY_POOL.last}`, NMX_RELAY_SECRET: secret };
  return { ...startService(lab, cmd, 'relay agent', env, outDir, 'relay', teardown, { files: given.files, reveal: reveals('relay', [cmd]) }), ca: cert, secret };
}

/** Where no TURN relay may send (RFC 1918, RFC 6598 shared space, link-local). */
const PRIVATE_RANGES = ['10.0.0.0-10.255.255.255', '172.16.0.0-172.31.255.255', '192.168.0.0-192.168.255.255', '100.64.0.0-100.127.255.255', '169.254.0.0-169.254.255.255'];

export const STUN_PORT = 3478;
/** TURN relay addresses are allocated from this port range on the STUN/TURN address. */
export const TURN_PORTS = { min: 40_000, max: 49_999 };

/** What peers learn about STUN and TURN (NMX_STUN, NMX_STUN_ALT, NMX_TURN, NMX_TURN_USER, …). */
export interface StunTurn {
  stun: string;
  /** RFC 5780's other address and port (CHANGE-REQUEST answers come from there) */
  stunAlt: string;
  turn: string | null;
  user: string;
  password: string;
  realm: string;
  stop: () => Promise<void>;
}

/**
 * coturn's turnserver on the public node's STUN addresses: STUN with RFC 5780 (two addresses, two
 * ports), and TURN (UDP and TCP) with long-term credentials made for this run. Waits until all four
 * STUN sockets are bound (state, not time). A turnserver that cannot start stops the run (RunError).
 */
export async function startStunTurn(lab: Lab, withTurn: boolean, outDir: string, teardown: Teardown): Promise<StunTurn> {
  const p: Plan = lab.plan;
  const { stunIp, stunAltIp } = p.rendezvous;
  const state = join(outDir, 'turn');
  mkdirSync(state, { recursive: true });
  const user = 'natmatrix';
  const password = randomBytes(12).toString('hex');
  const realm = 'natmatrix';
  const argv = [
    systemTool('turnserver'), '-n', '--no-cli', '--no-tls', '--no-dtls', '-L', stunIp, '-L', stunAltIp, '--listening-port', String(STUN_PORT),
    '--relay-ip', stunIp, '--min-port', String(TURN_PORTS.min), '--max-port', String(TURN_PORTS.max), '--fingerprint', '--no-multicast-peers',
    '--pidfile', join(state, 'turnserver.pid'), '--db', join(state, 'turndb'), '--log-file', 'stdout', '--simple-log', '--no-software-attribute',
    ...(withTurn ? ['--lt-cred-mech', '--realm', realm, '--user', `${user}:${password}`] : ['--stun-only']),
    // as deployed TURN servers are: no relaying into private ranges. Every ICE stack checks relay →
    // partner's host candidate; coturn's send to an address it has no route to otherwise tears the
    // whole allocation down (then 438 "Wrong nonce", then 400), so one such pair kills every relayed one
    ...PRIVATE_RANGES.flatMap((r) => ['--denied-peer-ip', r]),
    // a line per session and allocation: the evidence when a relayed try fails
    '--verbose',
  ];
  const d = startDaemon(p.rendezvous.ns, argv, {
    label: 'turnserver (STUN/TURN)',
    env: { NMX_RUN: p.runId },
    stdoutFile: join(outDir, 'turnserver.log'),
    stderrFile: join(outDir, 'turnserver.stderr.log'),
    watch: 'stdout',
    isReady: (printed) => printed.includes('Total General servers'),
    readyTimeoutMs: READY_TIMEOUT_MS,
    teardown,
  });
  try {
    await d.ready;
    const want = [stunIp, stunAltIp].flatMap((ip) => [`${ip}:${STUN_PORT}`, `${ip}:${STUN_PORT + 1}`]);
    for (let i = 0; ; i++) {
      const ss = await nsRun(p.rendezvous.ns, ['ss', '-Huln']);
      if (want.every((a) => ss.includes(a))) break;
      if (i >= 250) throw new RunError(`turnserver did not bind ${want.join(', ')} within 5 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (cause) {
    throw new RunError(`the STUN/TURN service could not start: ${(cause as Error).message} (see turnserver.log in the run folder)`, { cause });
  }
  return {
    stun: `${stunIp}:${STUN_PORT}`,
    stunAlt: `${stunAltIp}:${STUN_PORT + 1}`,
    turn: withTurn ? `${stunIp}:${STUN_PORT}` : null,
    user,
    password,
    realm,
    stop: () => d.stop(),
  };
}
