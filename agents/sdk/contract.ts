// The agent contract's vocabulary (README "Agent contract"): the environment tables, the exit codes and
// the verdict's type. The harness types the environments it sets with these tables, harness/contract.ts
// generates agents/contract.json from them, and test/unit/sdk.test.ts holds the Verdict type to the
// zod schema the judge validates with (harness/judge.ts). No imports: agents bundle this module.

/** Every variable the harness may set on a peer, and what it means. */
export const PEER_ENV = {
  NMX_ROLE: 'a or b: which side this peer is (a dials, b listens, for agents that care)',
  NMX_RUN: 'run id (namespace names are nmx-<run>-<node>)',
  NMX_SESSION: 'pairing id, unique per try (<run>.<cell>.<try>); the rendezvous keys peers by session + role',
  NMX_RENDEZVOUS: 'ip:port of this try\'s rendezvous (absent for an agent without one); at scope run one serves every pairing, at lane/try it serves only this lane\'s',
  NMX_SECRET: 'shared secret (hex) for signing messages, new every run',
  NMX_LOCAL_PORT: 'UDP (and TCP) port to bind on 0.0.0.0 (a dmz router forwards exactly this port; dmz-host forwards every port)',
  NMX_TIMEOUT_MS: 'punch window (window timing): give up this long after learning the peer\'s endpoint',
  NMX_WAIT_MS: 'give up if not paired by the rendezvous this long after start (window timing)',
  NMX_BUDGET_MS: 'only with budget timing: give up this long after start, whatever the stack is doing',
  NMX_DEADLINE_MS: 'the harness ends the agent\'s whole process tree (SIGTERM, SIGKILL 300 ms later) this long after its start',
  NMX_SPAWNED_AT_MS: 'when the agent was started (Unix epoch ms; for a confined agent, once its confinement was in place): budgets and the deadline count from here, not from when the agent got going',
  NMX_HOLD_MS: '0, or: after a direct path is confirmed, keep it idle this long, then check it still carries traffic (binding lifetime); agents that do not support it may ignore it',
  NMX_KEEPALIVE_MS: '0, or: while holding, send a keepalive this often',
  NMX_NAT: 'name of the NAT type in front of this peer (informational)',
  NMX_PEER_NAT: 'name of the NAT type in front of the other peer (informational)',
  NMX_RELAY: 'only for agents with service relay: ip:port of the TLS relay\'s control port (tx_tlsrelay line protocol)',
  NMX_RELAY_CA: 'only with NMX_RELAY: PEM file of the relay\'s certificate (self-signed for the run, IP SAN = the relay\'s address)',
  NMX_RELAY_SECRET: 'only with NMX_RELAY: the run\'s relay credential (hex), new every run; a server\'s control connection sends `auth <it>` as its first line',
  NMX_STUN: 'only for agents with service stun or turn: ip:port of the STUN server (coturn)',
  NMX_STUN_ALT: 'only with NMX_STUN: its RFC 5780 other address and port (where CHANGE-REQUEST answers come from)',
  NMX_TURN: 'only for agents with service turn: ip:port of the TURN server (UDP and TCP; the same server as NMX_STUN)',
  NMX_TURN_USER: 'only with NMX_TURN: long-term credential user name',
  NMX_TURN_PASS: 'only with NMX_TURN: its password, new every run',
  NMX_TURN_REALM: 'only with NMX_TURN: the realm',
  NMX_PUBLIC_IP: 'only when the peer\'s NAT type gives the host a public address of its own (cloud-eip): that address, translated 1:1 to the host (every port), like a cloud\'s metadata',
  NMX_PEER_PUBLIC: 'only when the other peer\'s NAT type is cloud-eip: its public ip:port (its public address and agent port), known out of band like a DNS name',
} as const;

export type PeerVariable = keyof typeof PEER_ENV;
/** A peer's environment as the harness sets it: only the table's variables, as strings. */
export type PeerEnv = Partial<Record<PeerVariable, string>>;

/** Every variable the harness sets on a rendezvous. */
export const RENDEZVOUS_ENV = {
  NMX_ROLE: 'rendezvous',
  NMX_RUN: 'run id',
  NMX_LISTEN: 'ip:port to bind in the public node (203.0.113.10; port 3478 at scope run, 13000 + lane at scope lane or try; +10 / +100 per further agent of the run)',
  NMX_SECRET: 'shared secret, the same the peers get',
} as const;

export type RendezvousVariable = keyof typeof RENDEZVOUS_ENV;
export type RendezvousEnv = Record<RendezvousVariable, string>;

/** Every variable the harness sets on the relay service (agents/relay/relay.ts). */
export const RELAY_ENV = {
  NMX_ROLE: 'relay',
  NMX_RUN: 'run id',
  NMX_LISTEN: 'ip:port of the TLS control port (the rendezvous address, port 12000)',
  NMX_RELAY_CERT: 'PEM certificate file (self-signed for the run; peers get it as NMX_RELAY_CA)',
  NMX_RELAY_KEY: 'PEM private key file',
  NMX_RELAY_PORTS: 'FIRST-LAST: the pool of listening ports, bound at start; pair i is (FIRST+2i public, FIRST+2i+1 reverse)',
  NMX_RELAY_SECRET: 'the run\'s relay credential, new every run (peers get it as NMX_RELAY_SECRET): a control connection whose first line is not `auth <it>` gets `auth_failed`',
} as const;

export type RelayVariable = keyof typeof RELAY_ENV;
export type RelayEnv = Record<RelayVariable, string>;

/**
 * Serving many tries from one process (a manifest's `"serve": true`; agents/sdk/serve.ts implements the
 * agent's side, harness/serve.ts the harness's). The harness starts the peer once per host of a lane
 * with SERVE.env set to "1" (and NMX_ROLE, NMX_RUN), waits for the ready line on stdout, then per try
 * writes one line to its stdin and reads one line from its stdout:
 *
 *   stdin   {"try":"<id>","env":{"NMX_SESSION":…, every variable of PEER_ENV a one-shot peer gets}}
 *   stdout  {"try":"<id>","exit":<the exit code a one-shot peer would end with>,"verdict":{…}}
 *   stdin   {"stop":"<id>"}     end that try early: answered {"try":"<id>","exit":143} (no verdict)
 *
 * A reply with "last": true says the process serves no more tries (the SDK says so when a try left a
 * socket or timer open): it exits, and the harness starts a new one for the host's next try.
 * Closing stdin means "no more tries": the agent exits 0. Stderr is free-form; what arrives while a try
 * runs is that try's evidence. A try must start from clean state: new sockets, nothing of the last try.
 */
export const SERVE = {
  env: 'NMX_SERVE',
  ready: '{"ready":true}',
} as const;

/** A try, as the harness writes it to a serving agent's stdin. */
export interface ServeTry {
  try: string;
  env: PeerEnv;
}

/** A try's end, as a serving agent writes it to stdout. */
export interface ServeReply {
  try: string;
  exit: number;
  verdict?: Verdict;
  /** this process serves no more tries: it exits after this reply */
  last?: boolean;
}

/** Version 2: process trees, verdict rules, budget timing, rendezvous scopes, STUN/TURN, manifests, peer checks.
 * Version 3: agents run confined (unprivileged, own PID and mount namespaces) unless privileged; the
 * relay's credential, per-client limit and reverse tokens.
 * Version 4: agents that serve many tries from one process (SERVE), optional; one process per try stays
 * the default. */
export const CONTRACT_VERSION = 4;

/** A peer's exit codes. The contract defines 0 and 1; any other code is a fault (the try is an
 * error): the SDK uses 2 for a bad environment, 3 for other faults (a socket that cannot be bound), and
 * 128 + the signal's number for SIGTERM and SIGINT. */
export const EXIT_CODE = {
  /** connected: the verdict says ok true */
  connected: 0,
  /** no path, a clean failure: the verdict says ok false */
  failed: 1,
  /** a missing or invalid variable: one stderr line naming it, no verdict */
  badEnvironment: 2,
  /** the agent cannot do its job (a socket it cannot bind): a verdict with the reason, if any */
  fault: 3,
  /** ended by SIGINT / SIGTERM: no verdict */
  sigint: 130,
  sigterm: 143,
} as const;

/** Which side a peer is. */
export type Role = 'a' | 'b';

/** What one step of a fallback strategy did (a verdict's `steps`). */
export interface Step {
  path: string;
  ok: boolean;
  ms: number;
  reason?: string | null;
  [extra: string]: unknown;
}

/** The verdict line: the last non-empty stdout line of a peer, one JSON object. Exit 0 with `ok`
 * true (then `peer` names the partner as this side reached it, `ip:port`), exit 1 with `ok` false.
 * Further fields are kept in the evidence. Equal to the input type of harness/judge.ts's verdictSchema
 * (a compile-time test holds them together). */
export interface Verdict {
  ok: boolean;
  /** which path won: direct-udp, direct-tcp, relayed (counts as relayed), or any other name (direct) */
  path?: string | null;
  /** the partner as this side reached it, ip:port: required when ok */
  peer?: string | null;
  /** ms from learning the peer to a confirmed two-way path */
  timeToDirectMs?: number | null;
  /** why not, when not ok */
  reason?: string | null;
  /** for agents with a fallback strategy: what each step did, in order */
  steps?: Step[];
  [extra: string]: unknown;
}
