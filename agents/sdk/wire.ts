// The signed datagram format of the shipped agents (udp-punch, tcp-punch, fallback, matconnect): peers
// and their rendezvous speak it, and any agent may reuse it.
//
// Every datagram is `<hex HMAC-SHA256 of the JSON bytes, keyed with the shared secret>.<JSON>`.
// The JSON carries: t (type), s (session), r (sender role: a | b | rdv), ts (sender's Date.now()),
// n (sender's sequence number) and, for `peer` messages, ep ("ip:port" of the other peer; a `reg` may
// declare one too).
//
// Keep this module cheap to load: agents are bundled and started inside network namespaces for
// every try, so only node:crypto is imported here.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Role } from './contract.ts';
import { tryParseEndpoint } from './endpoint.ts';
import { quote } from './log.ts';

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
