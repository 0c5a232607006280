// netpunch wire protocol, shared by the punching peer and the rendezvous server.
//
// Every datagram is `<hex HMAC-SHA256 of the JSON bytes, keyed with the shared secret>.<JSON>`.
// The JSON carries: t (type), s (session), r (sender role: a | b | rdv), ts (sender's Date.now()),
// n (sender's sequence number) and, for `peer` messages, ep ("ip:port" of the other peer; a `reg` may
// declare one too).
//
// Keep this module cheap to load: agents are bundled and started inside network namespaces for
// every try, so only node:crypto is imported here.

import { createHmac, timingSafeEqual } from 'node:crypto';

export type Role = 'a' | 'b';
export type Sender = Role | 'rdv';
export type MessageType = 'reg' | 'peer' | 'ping' | 'pong' | 'close';

export interface Message {
  t: MessageType;
  s: string;
  r: Sender;
  ts: number;
  n: number;
  /** on `peer` messages: the other peer's endpoint as the rendezvous observed it (or as the peer
   * declared it); on a `reg`, optionally, an endpoint the peer declares instead of the observed one (the
   * TCP rendezvous passes it on; the fallback agent's relay step announces its relay listener so) */
  ep?: string;
}

/** An IPv4 UDP endpoint. Field names match dgram's `rinfo`, so an rinfo is an Endpoint. */
export interface Endpoint {
  address: string;
  port: number;
}

/** Messages whose `ts` is further than this from the receiver's clock are dropped. */
export const MAX_SKEW_MS = 30_000;
/** Nothing legitimate comes close to this; larger datagrams are dropped unread. */
export const MAX_DATAGRAM_BYTES = 2048;
/** Session ids: 1..200 characters, no control characters (they end up in log lines). */
export const MAX_SESSION_LENGTH = 200;

const MESSAGE_TYPES: readonly string[] = ['reg', 'peer', 'ping', 'pong', 'close'];
const SENDERS: readonly string[] = ['a', 'b', 'rdv'];
const HEX_SIG = /^[0-9a-f]{64}$/i;
const SIG_LENGTH = 64;
const DOT = 0x2e;
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function otherRole(role: Role): Role {
  return role === 'a' ? 'b' : 'a';
}

export function isValidSession(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= MAX_SESSION_LENGTH && !CONTROL_CHARS.test(s);
}

// ---------------------------------------------------------------------------------------------
// Signing and verifying

function mac(secret: string, json: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(json).digest();
}

/** Serialise and sign a message. Only the protocol's fields are serialised, in a fixed order. */
export function sign(msg: Message, secret: string): Buffer {
  const wire: Message = { t: msg.t, s: msg.s, r: msg.r, ts: msg.ts, n: msg.n };
  if (msg.ep !== undefined) wire.ep = msg.ep;
  const json = Buffer.from(JSON.stringify(wire), 'utf8');
  const sig = mac(secret, json).toString('hex');
  return Buffer.concat([Buffer.from(`${sig}.`, 'ascii'), json]);
}

export interface VerifyOptions {
  /** receiver's clock (default Date.now()) */
  now?: number;
  /** allowed |ts - now| (default MAX_SKEW_MS) */
  maxSkewMs?: number;
  /** if set, messages of any other session are rejected */
  session?: string;
  /** the receiver's own role: messages claiming to come from it are rejected */
  self?: Sender;
  /** reject exact repeats of a datagram already accepted (captured and replayed by a third party) */
  replay?: ReplayGuard;
}

/**
 * Remembers the signatures of accepted datagrams for as long as their timestamp would pass the skew
 * check, so a datagram captured on the wire and sent again is rejected; once it is older than that, the
 * timestamp check rejects it. Every genuine datagram differs (sequence number, timestamp), so no
 * legitimate traffic is ever a repeat.
 */
export class ReplayGuard {
  private seen = new Map<string, number>();
  private lastPrune = 0;

  constructor(private readonly windowMs = 2 * MAX_SKEW_MS) {}

  /** true if `sig` was seen before (a replay); otherwise remember it and return false */
  check(sig: string, now: number): boolean {
    if (now - this.lastPrune > 1000) {
      for (const [k, until] of this.seen) if (until < now) this.seen.delete(k);
      this.lastPrune = now;
    }
    if (this.seen.has(sig)) return true;
    this.seen.set(sig, now + this.windowMs);
    return false;
  }

  get size(): number {
    return this.seen.size;
  }
}

export type VerifyResult = { ok: true; msg: Message } | { ok: false; reason: string };

/**
 * Check a datagram: size, signature (constant-time), JSON, shape, session, sender, timestamp —
 * in that order, so unsigned junk never reaches JSON.parse. Never throws.
 */
export function verify(data: Uint8Array, secret: string, opts: VerifyOptions = {}): VerifyResult {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length === 0) return { ok: false, reason: 'empty datagram' };
  if (buf.length > MAX_DATAGRAM_BYTES) return { ok: false, reason: `oversized datagram (${buf.length} bytes)` };
  const dot = buf.indexOf(DOT);
  if (dot < 0) return { ok: false, reason: `unsigned datagram (no "." separator, ${buf.length} bytes)` };
  const sigText = buf.subarray(0, dot).toString('latin1');
  if (dot !== SIG_LENGTH || !HEX_SIG.test(sigText)) {
    return { ok: false, reason: `malformed signature (${dot} chars before ".", expected ${SIG_LENGTH} hex digits)` };
  }
  const json = buf.subarray(dot + 1);
  const given = Buffer.from(sigText, 'hex');
  const expected = mac(secret, json);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'bad signature' };
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch {
    return { ok: false, reason: 'signed but unparsable JSON' };
  }
  const shape = checkShape(parsed);
  if (typeof shape === 'string') return { ok: false, reason: shape };
  const msg = shape;

  if (opts.session !== undefined && msg.s !== opts.session) {
    return { ok: false, reason: `wrong session ${quote(msg.s)}` };
  }
  if (opts.self !== undefined && msg.r === opts.self) {
    return { ok: false, reason: `from own role "${msg.r}"` };
  }
  const now = opts.now ?? Date.now();
  const maxSkew = opts.maxSkewMs ?? MAX_SKEW_MS;
  const skew = msg.ts - now;
  if (Math.abs(skew) > maxSkew) {
    return { ok: false, reason: `stale timestamp (ts is ${Math.round(skew)} ms from now, limit ±${maxSkew} ms)` };
  }
  if (opts.replay?.check(sigText, now)) return { ok: false, reason: `replayed datagram (${msg.t} #${msg.n} from ${msg.r} was already accepted)` };
  return { ok: true, msg };
}

function checkShape(v: unknown): Message | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'JSON is not an object';
  const o = v as Record<string, unknown>;
  if (typeof o.t !== 'string' || !MESSAGE_TYPES.includes(o.t)) return `bad field t (${quote(o.t)})`;
  if (!isValidSession(o.s)) return 'bad field s (session)';
  if (typeof o.r !== 'string' || !SENDERS.includes(o.r)) return `bad field r (${quote(o.r)})`;
  if (typeof o.ts !== 'number' || !Number.isFinite(o.ts)) return 'bad field ts';
  if (typeof o.n !== 'number' || !Number.isSafeInteger(o.n) || o.n < 0) return 'bad field n';
  const msg: Message = { t: o.t as MessageType, s: o.s, r: o.r as Sender, ts: o.ts, n: o.n };
  if (msg.t === 'peer' || (msg.t === 'reg' && o.ep !== undefined)) {
    if (typeof o.ep !== 'string' || tryParseEndpoint(o.ep) === null) return `bad field ep (${quote(o.ep)})`;
    msg.ep = o.ep;
  }
  return msg;
}

/**
 * Best-effort, unauthenticated look at the session a (possibly bad) datagram claims, for log
 * lines only. Returns a quoted, length-limited string, or null.
 */
export function peekSession(data: Uint8Array): string | null {
  try {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length > MAX_DATAGRAM_BYTES) return null;
    const dot = buf.indexOf(DOT);
    const o: unknown = JSON.parse(buf.subarray(dot + 1).toString('utf8'));
    if (typeof o === 'object' && o !== null && 's' in o && typeof o.s === 'string') return quote(o.s);
  } catch {
    // not JSON: nothing to peek at
  }
  return null;
}

/** JSON-quote a value for a log line, truncated. */
export function quote(v: unknown, max = 60): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

// ---------------------------------------------------------------------------------------------
// Endpoints ("ip:port", IPv4 only: the lab is IPv4 and the agents use udp4 sockets)

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

export function isIPv4Address(s: string): boolean {
  return IPV4.test(s);
}

/** Parse "a.b.c.d:port". Port 0 is rejected unless allowPortZero (listen addresses). Throws. */
export function parseEndpoint(s: string, opts: { allowPortZero?: boolean } = {}): Endpoint {
  const colon = s.lastIndexOf(':');
  if (colon < 0) throw new Error(`${quote(s)} is not ip:port (no ":")`);
  const address = s.slice(0, colon);
  const portText = s.slice(colon + 1);
  if (!isIPv4Address(address)) throw new Error(`${quote(s)} is not ip:port (${quote(address)} is not an IPv4 address)`);
  if (!/^\d{1,5}$/.test(portText)) throw new Error(`${quote(s)} is not ip:port (bad port ${quote(portText)})`);
  const port = Number(portText);
  const min = opts.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) throw new Error(`${quote(s)} is not ip:port (port ${port} out of range ${min}..65535)`);
  return { address, port };
}

export function tryParseEndpoint(s: string, opts: { allowPortZero?: boolean } = {}): Endpoint | null {
  try {
    return parseEndpoint(s, opts);
  } catch {
    return null;
  }
}

export function formatEndpoint(ep: Endpoint): string {
  return `${ep.address}:${ep.port}`;
}

export function sameEndpoint(x: Endpoint | null | undefined, y: Endpoint | null | undefined): boolean {
  return !!x && !!y && x.address === y.address && x.port === y.port;
}

// ---------------------------------------------------------------------------------------------
// Environment

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

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

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

/** Read the peer's environment. Throws EnvError naming the first bad variable. */
export function readPeerConfig(env: Env): PeerConfig {
  return {
    role: envRole(env, 'NMX_ROLE'),
    session: envSession(env, 'NMX_SESSION'),
    rendezvous: envEndpoint(env, 'NMX_RENDEZVOUS'),
    secret: envString(env, 'NMX_SECRET'),
    localPort: envInt(env, 'NMX_LOCAL_PORT', { min: 0, max: 65535 }),
    timeoutMs: envInt(env, 'NMX_TIMEOUT_MS', { default: 1000, min: 1, max: 3_600_000 }),
    waitMs: envInt(env, 'NMX_WAIT_MS', { default: 10_000, min: 1, max: 3_600_000 }),
    holdMs: envInt(env, 'NMX_HOLD_MS', { default: 0, min: 0, max: 3_600_000 }),
    keepaliveMs: envInt(env, 'NMX_KEEPALIVE_MS', { default: 0, min: 0, max: 3_600_000 }),
  };
}

export interface RendezvousConfig {
  listen: Endpoint;
  secret: string;
}

export function readRendezvousConfig(env: Env): RendezvousConfig {
  return {
    listen: envEndpoint(env, 'NMX_LISTEN', { default: '0.0.0.0:3478', allowPortZero: true }),
    secret: envString(env, 'NMX_SECRET'),
  };
}

// ---------------------------------------------------------------------------------------------
// Logging (stderr; stdout is reserved for the one machine-readable line)

export function stamp(): string {
  return new Date().toISOString();
}

export type Logger = (line: string) => void;

export function makeLogger(tag: string): Logger {
  return (line) => {
    process.stderr.write(`${stamp()} [${tag}] ${line}\n`);
  };
}

/** ms rounded to one decimal */
export function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Read an agent's configuration, or print one line naming the bad variable and exit 2 (the contract). */
export function configOrExit<T>(read: (env: Env) => T, tag: string): T {
  try {
    return read(process.env);
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`${stamp()} [${tag}] bad environment: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Ending a peer (the contract: one verdict line, then the exit code; signals print nothing)

/** What a peer's attempt came to: the verdict line and the exit code of the contract. */
export interface PunchResult {
  verdict: Record<string, unknown>;
  code: number;
}

/** Exit 143 / 130 on SIGTERM / SIGINT, printing no verdict. */
export function exitOnSignals(log: Logger): void {
  const onSignal = (sig: NodeJS.Signals, code: number) => () => {
    log(`${sig}: exiting`);
    process.exit(code);
  };
  process.on('SIGTERM', onSignal('SIGTERM', 143));
  process.on('SIGINT', onSignal('SIGINT', 130));
}

/** Print the verdict line, then exit with the contract's code. */
export function report({ verdict, code }: PunchResult): void {
  process.stdout.write(`${JSON.stringify(verdict)}\n`, () => process.exit(code));
}
