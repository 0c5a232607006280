// Reading the contract's environment, typed and validated. A missing or invalid variable is an EnvError
// that names it; configOrExit turns it into the contract's answer (one stderr line, exit 2).
//
// readPeerEnv reads every variable of PEER_ENV (and no other) into a record with the same keys, each
// parsed to its type; readPeerConfig is the shipped agents' narrower, camel-cased view (rendezvous
// required). Both use the same per-variable readers.
import { EXIT_CODE, type PeerVariable, type RendezvousVariable, type Role } from './contract.ts';
import { type Endpoint, isIPv4Address, parseEndpoint } from './endpoint.ts';
import { quote, stamp } from './log.ts';
import { isValidSession, MAX_SESSION_LENGTH } from './wire.ts';

export type Env = Record<string, string | undefined>;

/** A missing or invalid environment variable; agents print it on one stderr line and exit 2. */
export class EnvError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable} ${detail}`);
    this.name = 'EnvError';
  }
}

/** A variable's value; an empty one counts as not set. */
function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

// ---------------------------------------------------------------------------------------------
// One variable

export function envString(env: Env, name: string, dflt?: string): string {
  const v = raw(env, name) ?? dflt;
  if (v === undefined) throw new EnvError(name, 'is not set');
  return v;
}

export function envInt(env: Env, name: string, opts: { default?: number; min: number; max: number }): number {
  const v = raw(env, name);
  if (v === undefined) {
    if (opts.default !== undefined) return opts.default;
    throw new EnvError(name, `is not set (expected an integer ${opts.min}..${opts.max})`);
  }
  if (!/^\d+$/.test(v)) throw new EnvError(name, `is ${quote(v)}, expected an integer ${opts.min}..${opts.max}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < opts.min || n > opts.max) {
    throw new EnvError(name, `is ${v}, expected an integer ${opts.min}..${opts.max}`);
  }
  return n;
}

export function envEndpoint(env: Env, name: string, opts: { default?: string; allowPortZero?: boolean } = {}): Endpoint {
  const v = raw(env, name) ?? opts.default;
  if (v === undefined) throw new EnvError(name, 'is not set (expected ip:port)');
  try {
    return parseEndpoint(v, opts);
  } catch (err) {
    throw new EnvError(name, `is invalid: ${(err as Error).message}`);
  }
}

export function envRole(env: Env, name: string): Role {
  const v = raw(env, name);
  if (v === undefined) throw new EnvError(name, 'is not set (expected "a" or "b")');
  if (v !== 'a' && v !== 'b') throw new EnvError(name, `is ${quote(v)}, expected "a" or "b"`);
  return v;
}

export function envSession(env: Env, name: string): string {
  const v = raw(env, name);
  if (v === undefined) throw new EnvError(name, 'is not set');
  if (!isValidSession(v)) {
    throw new EnvError(name, `is invalid (1..${MAX_SESSION_LENGTH} characters, no control characters)`);
  }
  return v;
}

export function envIPv4(env: Env, name: string): string {
  const v = envString(env, name);
  if (!isIPv4Address(v)) throw new EnvError(name, `is ${quote(v)}, expected an IPv4 address`);
  return v;
}

/** A reader of a variable that may be absent: undefined then, otherwise `read`'s value. */
export function optional<T>(read: (env: Env, name: string) => T): (env: Env, name: string) => T | undefined {
  return (env, name) => (raw(env, name) === undefined ? undefined : read(env, name));
}

/** true when T's keys are exactly K (a compile-time check, nothing at run time) */
type SameKeys<T, K extends PropertyKey> = [keyof T] extends [K] ? ([K] extends [keyof T] ? true : false) : false;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MAX_SAFE_INTEGER = 2 ** 53 - 1;
const ms = (opts: { default?: number; min: number; max: number }) => (env: Env, name: string) => envInt(env, name, opts);

// ---------------------------------------------------------------------------------------------
// The peer's environment

/** A peer's environment, read (readPeerEnv): PEER_ENV's variables, each parsed; an optional one that is
 * absent (or empty) is undefined. See PEER_ENV for what each means. */
export interface PeerEnvironment {
  NMX_ROLE: Role;
  NMX_RUN: string | undefined;
  NMX_SESSION: string;
  /** absent for an agent without a rendezvous */
  NMX_RENDEZVOUS: Endpoint | undefined;
  NMX_SECRET: string;
  NMX_LOCAL_PORT: number;
  /** default 1000 */
  NMX_TIMEOUT_MS: number;
  /** default 10000 */
  NMX_WAIT_MS: number;
  /** only with budget timing */
  NMX_BUDGET_MS: number | undefined;
  NMX_DEADLINE_MS: number | undefined;
  /** epoch ms */
  NMX_SPAWNED_AT_MS: number | undefined;
  /** default 0 */
  NMX_HOLD_MS: number;
  /** default 0 */
  NMX_KEEPALIVE_MS: number;
  NMX_NAT: string | undefined;
  NMX_PEER_NAT: string | undefined;
  NMX_RELAY: Endpoint | undefined;
  /** a file name */
  NMX_RELAY_CA: string | undefined;
  NMX_RELAY_SECRET: string | undefined;
  NMX_STUN: Endpoint | undefined;
  NMX_STUN_ALT: Endpoint | undefined;
  NMX_TURN: Endpoint | undefined;
  NMX_TURN_USER: string | undefined;
  NMX_TURN_PASS: string | undefined;
  NMX_TURN_REALM: string | undefined;
  /** an IPv4 address */
  NMX_PUBLIC_IP: string | undefined;
  NMX_PEER_PUBLIC: Endpoint | undefined;
}

/** How each of PEER_ENV's variables is read: every variable has one, and nothing else has. (Pure: a
 * bundle that does not read a peer's environment leaves it out.) */
const PEER_READERS = {
  NMX_ROLE: envRole,
  NMX_RUN: /* @__PURE__ */ optional(envString),
  NMX_SESSION: envSession,
  NMX_RENDEZVOUS: /* @__PURE__ */ optional(envEndpoint),
  NMX_SECRET: envString,
  NMX_LOCAL_PORT: /* @__PURE__ */ ms({ min: 0, max: 65535 }),
  NMX_TIMEOUT_MS: /* @__PURE__ */ ms({ default: 1000, min: 1, max: HOUR_MS }),
  NMX_WAIT_MS: /* @__PURE__ */ ms({ default: 10_000, min: 1, max: HOUR_MS }),
  NMX_BUDGET_MS: /* @__PURE__ */ optional(/* @__PURE__ */ ms({ min: 1, max: HOUR_MS })),
  NMX_DEADLINE_MS: /* @__PURE__ */ optional(/* @__PURE__ */ ms({ min: 0, max: DAY_MS })),
  NMX_SPAWNED_AT_MS: /* @__PURE__ */ optional(/* @__PURE__ */ ms({ min: 0, max: MAX_SAFE_INTEGER })),
  NMX_HOLD_MS: /* @__PURE__ */ ms({ default: 0, min: 0, max: HOUR_MS }),
  NMX_KEEPALIVE_MS: /* @__PURE__ */ ms({ default: 0, min: 0, max: HOUR_MS }),
  NMX_NAT: /* @__PURE__ */ optional(envString),
  NMX_PEER_NAT: /* @__PURE__ */ optional(envString),
  NMX_RELAY: /* @__PURE__ */ optional(envEndpoint),
  NMX_RELAY_CA: /* @__PURE__ */ optional(envString),
  NMX_RELAY_SECRET: /* @__PURE__ */ optional(envString),
  NMX_STUN: /* @__PURE__ */ optional(envEndpoint),
  NMX_STUN_ALT: /* @__PURE__ */ optional(envEndpoint),
  NMX_TURN: /* @__PURE__ */ optional(envEndpoint),
  NMX_TURN_USER: /* @__PURE__ */ optional(envString),
  NMX_TURN_PASS: /* @__PURE__ */ optional(envString),
  NMX_TURN_REALM: /* @__PURE__ */ optional(envString),
  NMX_PUBLIC_IP: /* @__PURE__ */ optional(envIPv4),
  NMX_PEER_PUBLIC: /* @__PURE__ */ optional(envEndpoint),
} satisfies { [V in PeerVariable]: (env: Env, name: V) => PeerEnvironment[V] };

// PeerEnvironment has exactly PEER_ENV's keys (tsc fails here otherwise)
true satisfies SameKeys<PeerEnvironment, PeerVariable>;

/** Every variable of a table of readers, in the table's order; the first bad one throws. */
function readAll<T>(readers: Record<string, (env: Env, name: never) => unknown>, env: Env): T {
  const out: Record<string, unknown> = {};
  for (const [name, read] of Object.entries(readers)) out[name] = (read as (env: Env, name: string) => unknown)(env, name);
  return out as T;
}

function peerVar<V extends PeerVariable>(env: Env, name: V): PeerEnvironment[V] {
  return PEER_READERS[name](env, name) as PeerEnvironment[V];
}

/**
 * Read every variable of the peer contract, in PEER_ENV's order: NMX_ROLE, NMX_SESSION, NMX_SECRET and
 * NMX_LOCAL_PORT must be set; NMX_TIMEOUT_MS, NMX_WAIT_MS, NMX_HOLD_MS and NMX_KEEPALIVE_MS have the
 * shipped agents' defaults (1000, 10000, 0, 0); the others are undefined when absent (NMX_RENDEZVOUS
 * for an agent without a rendezvous, the services' ones). Throws EnvError naming the first bad one.
 */
export function readPeerEnv(env: Env = process.env): PeerEnvironment {
  return readAll<PeerEnvironment>(PEER_READERS, env);
}

export interface PeerConfig {
  role: Role;
  session: string;
  rendezvous: Endpoint;
  secret: string;
  localPort: number;
  timeoutMs: number;
  waitMs: number;
  /** keep the confirmed path this long, then check it still carries traffic (binding lifetime) */
  holdMs: number;
  /** while holding, send a keepalive this often (0: none) */
  keepaliveMs: number;
}

/** The shipped peers' view of their environment (a rendezvous is required). Throws EnvError naming the
 * first bad variable. */
export function readPeerConfig(env: Env): PeerConfig {
  return {
    role: peerVar(env, 'NMX_ROLE'),
    session: peerVar(env, 'NMX_SESSION'),
    rendezvous: envEndpoint(env, 'NMX_RENDEZVOUS' satisfies PeerVariable),
    secret: peerVar(env, 'NMX_SECRET'),
    localPort: peerVar(env, 'NMX_LOCAL_PORT'),
    timeoutMs: peerVar(env, 'NMX_TIMEOUT_MS'),
    waitMs: peerVar(env, 'NMX_WAIT_MS'),
    holdMs: peerVar(env, 'NMX_HOLD_MS'),
    keepaliveMs: peerVar(env, 'NMX_KEEPALIVE_MS'),
  };
}

// ---------------------------------------------------------------------------------------------
// The rendezvous's environment

/** A rendezvous's environment, read (readRendezvousEnv): RENDEZVOUS_ENV's variables, each parsed. */
export interface RendezvousEnvironment {
  NMX_ROLE: string | undefined;
  NMX_RUN: string | undefined;
  /** default 0.0.0.0:3478; port 0 allowed */
  NMX_LISTEN: Endpoint;
  NMX_SECRET: string;
}

// (pure: a bundle that does not read a rendezvous's environment leaves it out)
const RENDEZVOUS_READERS = {
  NMX_ROLE: /* @__PURE__ */ optional(envString),
  NMX_RUN: /* @__PURE__ */ optional(envString),
  NMX_LISTEN: (env: Env, name: string) => envEndpoint(env, name, { default: '0.0.0.0:3478', allowPortZero: true }),
  NMX_SECRET: envString,
} satisfies { [V in RendezvousVariable]: (env: Env, name: V) => RendezvousEnvironment[V] };

true satisfies SameKeys<RendezvousEnvironment, RendezvousVariable>;

function rendezvousVar<V extends RendezvousVariable>(env: Env, name: V): RendezvousEnvironment[V] {
  return RENDEZVOUS_READERS[name](env, name) as RendezvousEnvironment[V];
}

/** Read every variable of the rendezvous contract (NMX_LISTEN defaults to 0.0.0.0:3478, port 0 allowed;
 * NMX_SECRET must be set). Throws EnvError naming the first bad one. */
export function readRendezvousEnv(env: Env = process.env): RendezvousEnvironment {
  return readAll<RendezvousEnvironment>(RENDEZVOUS_READERS, env);
}

export interface RendezvousConfig {
  listen: Endpoint;
  secret: string;
}

export function readRendezvousConfig(env: Env): RendezvousConfig {
  return {
    listen: rendezvousVar(env, 'NMX_LISTEN'),
    secret: rendezvousVar(env, 'NMX_SECRET'),
  };
}

// ---------------------------------------------------------------------------------------------

/** Read an agent's configuration, or print one line naming the bad variable and exit 2 (the contract). */
export function configOrExit<T>(read: (env: Env) => T, tag: string): T {
  try {
    return read(process.env);
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`${stamp()} [${tag}] bad environment: ${err.message}\n`);
      process.exit(EXIT_CODE.badEnvironment);
    }
    throw err;
  }
}
