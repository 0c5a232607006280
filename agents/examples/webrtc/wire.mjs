// Signalling wire format shared by signal.mjs (the rendezvous) and peer.mjs.
//
// One message per line over TCP: `<hex HMAC-SHA256(NMX_SECRET, json)>.<json>\n`, where json is the
// UTF-8 JSON of {t, s, r, n, ts, d?}:
//   t  type: "join" (peer → server, first line), "sdp", "cand" (peer → peer, relayed by the server)
//   s  session (NMX_SESSION), r sender role ("a" | "b"), n sequence number of the sender (1, 2, …),
//   ts sender's clock (ms since the epoch), d payload (an SDP {type, sdp}, or a candidate, or null
//   for end-of-candidates).
// The server checks the MAC before it believes anything in a line, and forwards the line unchanged;
// the receiving peer checks it again (end to end: a forged or altered line is dropped by both), and
// also the session, that the sender is the other role, the clock (±30 s) and that n grows (no replay).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAX_LINE = 64 * 1024;
export const CLOCK_SKEW_MS = 30_000;

export function keyOf(secretHex) {
  if (typeof secretHex !== 'string' || !/^[0-9a-fA-F]{16,}$/.test(secretHex) || secretHex.length % 2) return null;
  return Buffer.from(secretHex, 'hex');
}

const mac = (key, json) => createHmac('sha256', key).update(json).digest('hex');

export function encode(key, msg) {
  const json = JSON.stringify(msg);
  return `${mac(key, json)}.${json}\n`;
}

/** Verify one line (without its newline). Returns { msg } or { error }. */
export function decode(key, line) {
  if (line.length > MAX_LINE) return { error: `line of ${line.length} bytes` };
  const dot = line.indexOf('.');
  if (dot !== 64) return { error: 'no signature' };
  const sig = Buffer.from(line.slice(0, 64), 'hex');
  const json = line.slice(65);
  const want = Buffer.from(mac(key, json), 'hex');
  if (sig.length !== 32 || !timingSafeEqual(sig, want)) return { error: 'bad signature' };
  let msg;
  try {
    msg = JSON.parse(json);
  } catch {
    return { error: 'not JSON' };
  }
  if (!msg || typeof msg !== 'object' || typeof msg.t !== 'string' || typeof msg.s !== 'string' || (msg.r !== 'a' && msg.r !== 'b') || !Number.isInteger(msg.n) || typeof msg.ts !== 'number') {
    return { error: 'bad shape' };
  }
  if (Math.abs(Date.now() - msg.ts) > CLOCK_SKEW_MS) return { error: `clock ${msg.ts} out of range` };
  return { msg };
}

/** Split a TCP stream into lines; calls onLine(line) for each, onError(why) on an oversized line. */
export function lineReader(onLine, onError) {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line) onLine(line);
    }
    if (buf.length > MAX_LINE) {
      buf = '';
      onError(`line longer than ${MAX_LINE} bytes`);
    }
  };
}
