// natmatrix/agent: the agent contract (README "Agent contract") as code, for agents written in
// TypeScript: the environment tables and typed reading of them, the verdict and the exit codes, signal
// handling, logging, and the signed datagram format and endpoints the shipped agents speak.
//
// It imports only node: built-ins (agents are bundled with esbuild and started for every try), and
// nothing of the harness; the harness takes its environment tables from here.
//
//   import { configOrExit, connected, exitOnSignals, failed, makeLogger, readPeerEnv, report } from 'natmatrix/agent';
//   const env = configOrExit(readPeerEnv, 'peer');          // bad variable: one stderr line, exit 2
//   exitOnSignals(makeLogger(env.NMX_ROLE));                 // SIGTERM: exit 143, no verdict
//   report(ok ? connected({ path: 'direct-udp', peer: '203.0.113.22:40000', timeToDirectMs: 12.3 })
//             : failed('no pong within 1000 ms'));           // verdict line, exit 0 / 1

export {
  CONTRACT_VERSION,
  EXIT_CODE,
  PEER_ENV,
  type PeerEnv,
  type PeerVariable,
  RELAY_ENV,
  type RelayEnv,
  type RelayVariable,
  RENDEZVOUS_ENV,
  type RendezvousEnv,
  type RendezvousVariable,
  type Role,
  SERVE,
  type ServeReply,
  type ServeTry,
  type Step,
  type Verdict,
} from './contract.ts';
export { type Endpoint, formatEndpoint, isIPv4Address, parseEndpoint, sameEndpoint, tryParseEndpoint } from './endpoint.ts';
export {
  configOrExit,
  type Env,
  envEndpoint,
  EnvError,
  envInt,
  envIPv4,
  envRole,
  envSession,
  envString,
  optional,
  type PeerConfig,
  type PeerEnvironment,
  readPeerConfig,
  readPeerEnv,
  readRendezvousConfig,
  readRendezvousEnv,
  type RendezvousConfig,
  type RendezvousEnvironment,
} from './env.ts';
export { type Logger, makeLogger, quote, round1, stamp } from './log.ts';
export { type AgentResult, type ConnectedFields, connected, exitOnSignals, failed, fault, report } from './verdict.ts';
export { parseServeLine, type PeerHandler, runPeer, STOP_GRACE_MS } from './serve.ts';
export { type TryTimers, tryTimers } from './timers.ts';
export {
  isValidSession,
  MAX_DATAGRAM_BYTES,
  MAX_SESSION_LENGTH,
  MAX_SKEW_MS,
  type Message,
  type MessageType,
  otherRole,
  peekSession,
  ReplayGuard,
  type Sender,
  sign,
  verify,
  type VerifyOptions,
  type VerifyResult,
} from './wire.ts';
