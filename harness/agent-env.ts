// The agent seam: what an agent is given to run. Its command lines and confinement (runnableAgents,
// worked out once per run, before anything is built), its hard deadline, and the environment of one
// peer of one try — every NMX_* variable of the contract (agents/sdk/contract.ts), the run's services'
// variables, and the files named in it given to a confined agent as private copies. The lane loop
// (run.ts) and the services (services.ts) take these; nothing here starts a process.
import { join } from 'node:path';
import { agentCommand } from './agent.ts';
import { giveFiles, reveals, type Confinement } from './confine.ts';
import { type PeerEnv, peerEnv, type PeerVariable } from './contract.ts';
import type { AgentSpec, ServiceName } from './manifest.ts';
import type { NatType } from './nat.ts';
import type { Plan, PlannedAttempt, Side } from './plan.ts';
import { ROOT } from './scenario.ts';
import type { Relay, StunTurn } from './services.ts';

/** How long a peer may wait for the rendezvous to pair it, after it started (window timing). */
export const PAIRING_WAIT_MS = 5000;
/** Slack on top of an agent's own budgets before the harness kills it as hung. */
export const HANG_GRACE_MS = 1500;

/** The relay natmatrix runs when an agent (or its scenario) asks for one. */
export const RELAY_AGENT = join(ROOT, 'agents', 'relay', 'relay.ts');

/** An agent ready to run: its spec and its command lines. */
export interface RunnableAgent {
  spec: AgentSpec;
  peer: { a: string[]; b: string[] };
  rendezvous: string[] | null;
  /** how its processes are confined (the folders to show them); null: it is privileged */
  confine: Confinement | null;
}

/** Turn specs into command lines (bundling .ts agents), before anything is built. */
export async function runnableAgents(specs: AgentSpec[]): Promise<RunnableAgent[]> {
  return Promise.all(
    specs.map(async (spec) => {
      const [a, b, rendezvous] = await Promise.all([
        agentCommand(spec.peer.a),
        spec.peer.b === spec.peer.a ? null : agentCommand(spec.peer.b),
        spec.rendezvous === null ? null : agentCommand(spec.rendezvous),
      ]);
      // a confined agent runs as an unprivileged user: it must be able to use its own files, and is
      // shown the folders they are in where the host hides them from it
      const argvs = [a, b, rendezvous].filter((x): x is string[] => x !== null);
      const confine = spec.privileged ? null : { files: [], reveal: reveals(spec.name, argvs, spec.dir) };
      return { spec, peer: { a, b: b ?? a }, rendezvous, confine };
    }),
  );
}

/** A cloud-eip host's own public address, and its peer's public endpoint: known out of band, like a
 * cloud's metadata service and a DNS name (seed 000). */
function publicEnv(side: Side, nat: NatType, peer: Side, peerNat: NatType): PeerEnv {
  return peerEnv({
    ...(nat.publicIp && side.publicIp ? { NMX_PUBLIC_IP: side.publicIp } : {}),
    ...(peerNat.publicIp && peer.publicIp ? { NMX_PEER_PUBLIC: `${peer.publicIp}:${peer.hostPort}` } : {}),
  });
}

/** The hard deadline of a peer, from its start: its timing's budgets plus a grace. */
export function hardDeadlineMs(spec: AgentSpec, plan: Pick<Plan, 'timeoutMs' | 'holdMs'>): number {
  // a held path is re-checked after the hold: one more punch window
  const hold = plan.holdMs > 0 ? plan.holdMs + plan.timeoutMs : 0;
  if (spec.timing.mode === 'budget') return spec.timing.budgetMs + hold + HANG_GRACE_MS;
  // an agent with a strategy of N steps gets a punch window per step
  return PAIRING_WAIT_MS + (spec.strategy?.length ?? 1) * plan.timeoutMs + hold + HANG_GRACE_MS;
}

/** Peer environment variables that name a file the agent reads. */
const GIVEN_ENV = ['NMX_RELAY_CA'] as const satisfies readonly PeerVariable[];

/** The NMX_* variables of the services an agent asked for. */
export function serviceEnv(spec: AgentSpec, relay: Relay | null, stunTurn: StunTurn | null): PeerEnv {
  const uses = (x: ServiceName) => spec.services.includes(x);
  return peerEnv({
    ...(uses('relay') && relay ? { NMX_RELAY: relay.address, NMX_RELAY_CA: relay.ca, NMX_RELAY_SECRET: relay.secret } : {}),
    ...((uses('stun') || uses('turn')) && stunTurn ? { NMX_STUN: stunTurn.stun, NMX_STUN_ALT: stunTurn.stunAlt } : {}),
    ...(uses('turn') && stunTurn?.turn ? { NMX_TURN: stunTurn.turn, NMX_TURN_USER: stunTurn.user, NMX_TURN_PASS: stunTurn.password, NMX_TURN_REALM: stunTurn.realm } : {}),
  });
}

/** What one peer of one try is started with. */
export interface PeerLaunchInput {
  side: Side;
  peer: Side;
  att: PlannedAttempt;
  /** ip:port of the try's rendezvous, null for an agent without one */
  rendezvous: string | null;
  secret: string;
  plan: Pick<Plan, 'runId' | 'timeoutMs' | 'holdMs' | 'keepaliveMs'>;
  spec: AgentSpec;
  hardMs: number;
  serviceEnv: PeerEnv;
  confine: Confinement | null;
}

/** The environment a peer starts with, and (confined) the files it is given. */
export function peerLaunch(x: PeerLaunchInput): { env: Record<string, string>; confine: Confinement | null } {
  const { side, peer, att, spec } = x;
  const env = peerEnv({
    NMX_ROLE: side.role,
    NMX_RUN: x.plan.runId,
    NMX_SESSION: att.session,
    ...(x.rendezvous ? { NMX_RENDEZVOUS: x.rendezvous } : {}),
    NMX_SECRET: x.secret,
    NMX_LOCAL_PORT: String(side.hostPort),
    NMX_TIMEOUT_MS: String(x.plan.timeoutMs),
    NMX_WAIT_MS: String(PAIRING_WAIT_MS),
    ...(spec.timing.mode === 'budget' ? { NMX_BUDGET_MS: String(spec.timing.budgetMs) } : {}),
    NMX_DEADLINE_MS: String(x.hardMs),
    NMX_SPAWNED_AT_MS: String(Date.now()),
    NMX_HOLD_MS: String(x.plan.holdMs),
    NMX_KEEPALIVE_MS: String(x.plan.keepaliveMs),
    NMX_NAT: side.role === 'a' ? att.a : att.b,
    NMX_PEER_NAT: side.role === 'a' ? att.b : att.a,
    ...x.serviceEnv,
    ...(side.role === 'a' ? publicEnv(side, att.natA, peer, att.natB) : publicEnv(side, att.natB, peer, att.natA)),
  }) as Record<string, string>;
  if (!x.confine) return { env, confine: null };
  // files named in the environment (the relay's CA) are given to a confined agent as private copies
  const given = giveFiles(env, GIVEN_ENV);
  return { env: given.env, confine: { ...x.confine, files: given.files } };
}
