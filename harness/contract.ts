// The agent contract as code. The environment tables below are the only variables the harness may set
// (run.ts types its environments with them), the verdict and manifest schemas are the ones judge.ts and
// manifest.ts validate with, and agents/contract.json is generated from all of them:
//   node --import tsx harness/contract.ts > agents/contract.json
// A unit test fails when the file and this module drift apart.
import { z } from 'zod';
import { verdictSchema } from './judge.ts';
import { agentFieldsSchema, MANIFEST_FILE } from './manifest.ts';

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

export type PeerEnv = Partial<Record<keyof typeof PEER_ENV, string>>;

export const RENDEZVOUS_ENV = {
  NMX_ROLE: 'rendezvous',
  NMX_RUN: 'run id',
  NMX_LISTEN: 'ip:port to bind in the public node (203.0.113.10; port 3478 at scope run, 13000 + lane at scope lane or try; +10 / +100 per further agent of the run)',
  NMX_SECRET: 'shared secret, the same the peers get',
} as const;

export type RendezvousEnv = Record<keyof typeof RENDEZVOUS_ENV, string>;

export const RELAY_ENV = {
  NMX_ROLE: 'relay',
  NMX_RUN: 'run id',
  NMX_LISTEN: 'ip:port of the TLS control port (the rendezvous address, port 12000)',
  NMX_RELAY_CERT: 'PEM certificate file (self-signed for the run; peers get it as NMX_RELAY_CA)',
  NMX_RELAY_KEY: 'PEM private key file',
  NMX_RELAY_PORTS: 'FIRST-LAST: the pool of listening ports, bound at start; pair i is (FIRST+2i public, FIRST+2i+1 reverse)',
  NMX_RELAY_SECRET: 'the run\'s relay credential, new every run (peers get it as NMX_RELAY_SECRET): a control connection whose first line is not `auth <it>` gets `auth_failed`',
} as const;

export type RelayEnv = Record<keyof typeof RELAY_ENV, string>;

/** Version 2: process trees, verdict rules, budget timing, rendezvous scopes, STUN/TURN, manifests, peer checks.
 * Version 3: agents run confined (unprivileged, own PID and mount namespaces) unless privileged; the
 * relay's credential, per-client limit and reverse tokens. */
export const CONTRACT_VERSION = 3;

/** The whole machine-readable contract (agents/contract.json). */
export function contractJson(): object {
  const schema = (s: z.ZodType) => {
    const { $schema: _, ...rest } = z.toJSONSchema(s, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
    return rest;
  };
  return {
    $comment: `natmatrix agent contract, machine-readable, generated by harness/contract.ts (node --import tsx harness/contract.ts > agents/contract.json). The prose version is the README section 'Agent contract'. Version ${CONTRACT_VERSION}.`,
    version: CONTRACT_VERSION,
    launch: {
      where: 'inside the node\'s network namespace, in the harness\'s working directory, as the leader of a process group of its own',
      confinement: 'by default confined: user nobody, no capabilities in any set, no_new_privs, a PID namespace of its own (it sees and can signal only its own processes), a mount namespace with / read-only and a private, empty /tmp and /dev/shm; HOME=/tmp; files named in its environment (NMX_RELAY_CA) are private copies under /tmp/natmatrix/. Its files must be readable by other users. An agent whose manifest (or scenario entry) says "privileged": true runs as root, unconfined, and the report says so',
      how: {
        '.ts / .mts': 'bundled with esbuild into one .mjs (cached by content), run with the harness\'s node',
        '.js / .mjs / .cjs': 'run with the harness\'s node',
        'anything else': 'executed directly; it must be executable (chmod +x) and carry a shebang',
      },
      stdin: '/dev/null',
      processTree: 'the agent is its whole process tree: every signal goes to its process group; processes of the group still running when the agent ends are ended (and named in the try\'s notes), and anything left in the host\'s namespace (a daemon that left the group) is ended before the next try. A wrapper must pass SIGTERM on to what it starts (exec it, or trap and forward).',
      deadline: 'NMX_DEADLINE_MS after start the harness sends SIGTERM to the process group, SIGKILL 300 ms later, and stops reading output pipes held by anyone else 500 ms after that; a killed agent makes the try an error. Window timing: NMX_WAIT_MS + N × NMX_TIMEOUT_MS + 1500 ms (N: steps of the strategy, 1 without one); budget timing: NMX_BUDGET_MS + 1500 ms; plus NMX_HOLD_MS + NMX_TIMEOUT_MS when holding',
    },
    peer: {
      environment: PEER_ENV,
      stdout: 'log nothing here but the verdict: the LAST non-empty line must be one JSON object matching verdictSchema',
      stderr: 'free-form logs; kept as evidence in cells/<a>-vs-<b>/try-<n>/<role>.stderr',
      exitCodes: {
        '0': 'connected: verdict ok must be true',
        '1': 'no path (a clean failure): verdict ok must be false',
        other: 'a fault: the try is an error, whatever the verdict says',
      },
      verdictSchema: schema(verdictSchema),
      examples: [
        '{"ok":true,"path":"direct-udp","peer":"203.0.113.22:40000","timeToDirectMs":12.3}',
        '{"ok":false,"path":null,"peer":null,"reason":"no pong within 600 ms of learning peer 203.0.113.21:40000 (sent 30 pings)"}',
      ],
      peerCheck: 'a connected verdict must name its partner in "peer" (ip:port as this side saw it): the partner router\'s public address (any port), a cloud host\'s own public address, on a same-site pairing also the partner\'s LAN address; on a relayed path also a service address (relay, TURN). Anything else makes the try an error that names it. A manifest may set peerCheck false for a stack that cannot say whom it reached.',
      judging: {
        both: 'both agents ok with exit 0 and the same path = connected (direct, or relayed when the path is "relayed"); both ok false with exit 1 = failed; anything else (a crash, a signal, a hang, no or garbage JSON, exit code and ok disagreeing, the two agents disagreeing on the outcome or the path) = error',
        a: 'only a\'s verdict counts; b is ended once a has ended; b is a fault only if it crashed, was killed by something else or hung',
        b: 'the same, with the roles swapped',
        either: 'connected as soon as one side exits connected (the other is then ended); failed when both fail cleanly; any fault = error',
      },
    },
    rendezvous: {
      environment: RENDEZVOUS_ENV,
      ready: 'print one stdout line that is a JSON object with "ready": true once bound; tries of its scope wait for it (30 s at most); one that exits, or stays silent, turns every try it serves into an error',
      scopes: {
        run: 'one rendezvous serves every pairing of the run at once (peers told apart by NMX_SESSION)',
        lane: 'one rendezvous per lane, serving that lane\'s tries one after another: for servers that pair whoever registers (fixed roles)',
        try: 'a fresh rendezvous for every try, ended with it: for servers that remember peers or addresses',
      },
      logs: 'prefix stderr lines with [<session>]: for a try that did not connect the harness copies that session\'s lines into the try\'s rendezvous.log',
      lifetime: 'ended (its process group) with SIGTERM when its scope ends',
    },
    relay: {
      what: 'started by the harness in the public node when an agent asks for service relay (agents/relay/relay.ts); peers reach it at NMX_RELAY',
      environment: RELAY_ENV,
      protocol: 'TLS everywhere, lines end in \\r\\n. A server connects to the control port, sends `auth NMX_RELAY_SECRET` (within 5 s; otherwise `auth_failed` and the relay closes) and reads `reverse_token TOKEN` (this allocation\'s), `public_listener HOST:PORT` (give it to clients) and `reverse_listener HOST:PORT`; or `too_many_listeners` when its address already holds 2 pairs, or `no_available_listeners` when the pool is used up (the relay closes after either). For every client that connects to the public port the relay sends `new_connection`; the server connects to the reverse port from the control connection\'s address and sends `reverse_token TOKEN` as its first line (anything else, or another address, is closed having received nothing), and that connection carries the client\'s bytes both ways. Clients on the public port need no credential.',
      ready: 'one stdout line {"ready":true,...} once every port is bound',
    },
    stunTurn: {
      what: 'coturn\'s turnserver in the public node when an agent asks for service stun or turn: STUN with RFC 5780 (203.0.113.12 and .13, ports 3478 and 3479), TURN over UDP and TCP with long-term credentials made for the run; relay addresses on 203.0.113.12, ports 40000–49999; no relaying to private addresses (403, as deployed servers do)',
      allocations: 'one server serves the whole run, and a lane\'s next try comes from the same 5-tuple behind an endpoint-independent NAT: delete your allocations on exit (a Refresh with lifetime 0), or the next try gets 437 Allocation Mismatch',
    },
    manifest: {
      file: `${MANIFEST_FILE} beside the agent; --agent accepts it, a folder holding it, or a bare peer executable. Paths in it are relative to it.`,
      schema: schema(agentFieldsSchema),
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(JSON.stringify(contractJson(), null, 2) + '\n');
