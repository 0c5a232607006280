// matconnect peer: one logical connection from two one-way UDP streams (seed 000).
//
// The topology it is for: cloud hosts with a public address of their own (1:1, inbound only) whose
// outgoing packets all leave through a separate NAT gateway with another address and port.
//
//   host A 10.0.0.1                                                        host B 10.0.0.6
//   ┌─────────────┐   ┌────────────────────────────┐            ┌────────────────────────────┐   ┌─────────────┐
//   │ socket      │   │ router A                   │            │ router B                   │   │ socket      │
//   │ :49152      ├───┤ in:  1.2.3.4:p → 10.0.0.1:p│            │ in:  9.8.7.6:p → 10.0.0.6:p├───┤ :8080       │
//   │ (client, a) │   │      (1:1 DNAT, stateless) ├─ internet ─┤      (1:1 DNAT, stateless) │   │ (server, b) │
//   │             │   │ out: SNAT to gateway       │            │ out: SNAT to gateway       │   │             │
//   │             │   │      5.6.7.8:<random>      │            │      4.3.2.1:<random>      │   │             │
//   └─────────────┘   └────────────────────────────┘            └────────────────────────────┘   └─────────────┘
//
//   plain request/response fails:
//     A 10.0.0.1:49152 → 9.8.7.6:8080      leaves as 5.6.7.8:63122 → 9.8.7.6:8080, reaches B (DNAT)
//     B 10.0.0.6:8080  → 5.6.7.8:63122     leaves as 4.3.2.1:19387 → 5.6.7.8:63122: gateway A only
//                                           admits replies from 9.8.7.6:8080, so it drops this one
//   matconnect works:
//     A → 9.8.7.6:8080     "reply to 1.2.3.4:49152" + ping     (arrives from 5.6.7.8:63122)
//     B → 1.2.3.4:49152    "reply to 9.8.7.6:8080"  + pong     (arrives from 4.3.2.1:19387; A's public
//                                                                 address admits anyone: 1:1 DNAT)
//   so A→B and B→A are two separate one-way streams, each entering through the receiver's public address.
//
// Wire format: every datagram is [header] + signed message (agents/sdk/wire.ts: `<64 hex HMAC>.<JSON>`).
//   header (matconnect step only): 6 bytes = the sender's public IPv4 (4 bytes) + port (2 bytes, big
//   endian) where it expects responses: NMX_PUBLIC_IP and the bound port. The seed sends it once per
//   session; we prefix every datagram, since UDP may lose or reorder the first. The header is not
//   covered by the HMAC, so headered messages also carry the same endpoint as the signed field `ep`,
//   and a receiver answers only when the body verifies AND its `ep` equals the header: a rewritten
//   header (captured datagram, new header) cannot aim replies at a third party.
//   A headered datagram is recognised by its shape: a signed message starts with 64 hex digits and
//   '.', so byte 70 is '.' in a headered one and byte 64 in a plain one; never both.
//
// Roles: b is the server (seed: `matconnect`), a the client (seed: `matconnect <server ip>:8080`).
// The client drives two steps, in order:
//   1. plain-udp: signed pings to NMX_PEER_PUBLIC every 20 ms for NMX_TIMEOUT_MS; the server answers
//      each with a pong to the datagram's SOURCE address, as any UDP server does.
//   2. matconnect (only if step 1 got no pong): headered pings every 20 ms for another
//      NMX_TIMEOUT_MS; the server verifies each and answers with its own header + a signed pong to the
//      HEADER's address, never to the source.
// A pong confirms the path its framing belongs to (plain pong: plain-udp, headered pong: matconnect);
// the client then sends 3 closes framed the same way to NMX_PEER_PUBLIC and finishes ok. The server
// finishes ok on the first verified close, with the path of that close's framing, or fails cleanly
// NMX_WAIT_MS + 2 × NMX_TIMEOUT_MS after start. The rendezvous (NMX_RENDEZVOUS) is not used: each side
// knows the other's public endpoint out of band (NMX_PEER_PUBLIC, like a DNS name).
//
//   exit 0  {"ok":true,"path":"matconnect","peer":"ip:port","timeToDirectMs":612.3,
//            "steps":[{"path":"plain-udp","ok":false,"ms":600,...},{"path":"matconnect","ok":true,"ms":12.3,...}]}
//   exit 1  {"ok":false,"path":null,"peer":null,"reason":"...","steps":[...]}      (clean failure)
//   exit 2  bad environment (one stderr line naming the variable, no stdout)
//   exit 3  {"ok":false,...,"reason":"cannot bind ..."}                           (fault: socket unusable)
//   exit 143 / 130 on SIGTERM / SIGINT, no stdout

import dgram from 'node:dgram';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  type AgentResult,
  connected,
  type Endpoint,
  type Env,
  EnvError,
  envEndpoint,
  envIPv4,
  failed,
  fault,
  formatEndpoint,
  isIPv4Address,
  makeLogger,
  type Message,
  type MessageType,
  otherRole,
  type PeerConfig,
  quote,
  readPeerConfig,
  ReplayGuard,
  runPeer,
  round1,
  sign,
  type Step,
  tryParseEndpoint,
  tryTimers,
  verify,
} from '../sdk/index.ts';

const PING_INTERVAL_MS = 20;
const CLOSE_COUNT = 3;
const CLOSE_INTERVAL_MS = 10;

/** Length of the matconnect header: IPv4 address (4 bytes) + port (2 bytes, big endian). */
export const HEADER_BYTES = 6;
const SIG_CHARS = 64;
const DOT = 0x2e;

export type StepPath = 'plain-udp' | 'matconnect';

// ---------------------------------------------------------------------------------------------
// Header codec

/**
 * Why `ep` cannot be a reply address, or null if it can: replies go to a unicast IPv4 address on a
 * real port (not 0.0.0.0/8, multicast, reserved or broadcast; loopback is fine, for tests).
 */
function replyAddressProblem(ep: Endpoint): string | null {
  if (!isIPv4Address(ep.address)) return `${quote(ep.address)} is not an IPv4 address`;
  if (!Number.isInteger(ep.port) || ep.port < 1 || ep.port > 65535) return `port ${ep.port} out of range 1..65535`;
  const first = Number(ep.address.split('.')[0]);
  if (first === 0) return `${ep.address} is in 0.0.0.0/8 (not a reply address)`;
  if (first >= 224) return `${ep.address} is multicast, reserved or broadcast (not a reply address)`;
  return null;
}

/** The 6-byte header announcing where the sender expects responses. Throws if `ep` is not usable. */
export function encodeHeader(ep: Endpoint): Buffer {
  const problem = replyAddressProblem(ep);
  if (problem !== null) throw new Error(`cannot encode header for ${formatEndpoint(ep)}: ${problem}`);
  const buf = Buffer.alloc(HEADER_BYTES);
  ep.address.split('.').forEach((octet, i) => buf.writeUInt8(Number(octet), i));
  buf.writeUInt16BE(ep.port, 4);
  return buf;
}

/** Parse a 6-byte header. Throws on any other length, port 0, or an address no reply can go to. */
export function decodeHeader(buf: Uint8Array): Endpoint {
  if (buf.length !== HEADER_BYTES) throw new Error(`header is ${buf.length} bytes, expected ${HEADER_BYTES}`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const ep: Endpoint = { address: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, port: b.readUInt16BE(4) };
  const problem = replyAddressProblem(ep);
  if (problem !== null) throw new Error(`header ${formatEndpoint(ep)}: ${problem}`);
  return ep;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Does `buf` at `offset` start like a signed message (64 hex digits, then '.')? */
function looksSigned(buf: Uint8Array, offset: number): boolean {
  if (buf.length < offset + SIG_CHARS + 1 || buf[offset + SIG_CHARS] !== DOT) return false;
  for (let i = offset; i < offset + SIG_CHARS; i++) if (!isHex(buf[i]!)) return false;
  return true;
}

export interface SplitDatagram {
  /** the header's reply address, for a headered datagram; null for a plain one (or a bad header) */
  replyTo: Endpoint | null;
  /** the part to verify: the signed message (or, for junk, the whole datagram) */
  body: Buffer;
  /** set when the datagram is shaped like a headered one but the header is unusable */
  headerError?: string;
}

/**
 * Separate a datagram into header and body by shape: headered if the bytes after the first 6 look
 * like a signed message. Nothing here is authenticated: verify the body before using replyTo.
 */
export function splitDatagram(buf: Buffer): SplitDatagram {
  if (looksSigned(buf, HEADER_BYTES)) {
    const body = buf.subarray(HEADER_BYTES);
    try {
      return { replyTo: decodeHeader(buf.subarray(0, HEADER_BYTES)), body };
    } catch (err) {
      return { replyTo: null, body, headerError: (err as Error).message };
    }
  }
  return { replyTo: null, body: buf };
}

/** The `ep` field of a signed message's JSON (call only after verify() accepted `body`), or null. */
export function signedEndpoint(body: Buffer): Endpoint | null {
  try {
    const o: unknown = JSON.parse(body.subarray(SIG_CHARS + 1).toString('utf8'));
    if (typeof o === 'object' && o !== null && 'ep' in o && typeof o.ep === 'string') return tryParseEndpoint(o.ep);
  } catch {
    // not JSON
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Environment

export interface MatconnectConfig extends PeerConfig {
  /** NMX_PUBLIC_IP: this host's own public IPv4 (1:1 inbound), announced in the header */
  publicIp: string;
  /** NMX_PEER_PUBLIC: the peer's public ip:port, where every datagram to it goes */
  peerPublic: Endpoint;
}

/** readPeerConfig plus NMX_PUBLIC_IP and NMX_PEER_PUBLIC. Throws EnvError naming the first bad variable. */
export function readMatconnectConfig(env: Env): MatconnectConfig {
  const base = readPeerConfig(env);
  const publicIp = envIPv4(env, 'NMX_PUBLIC_IP');
  const problem = replyAddressProblem({ address: publicIp, port: 1 });
  if (problem !== null) throw new EnvError('NMX_PUBLIC_IP', `is unusable: ${problem}`);
  const peerPublic = envEndpoint(env, 'NMX_PEER_PUBLIC');
  return { ...base, publicIp, peerPublic };
}

// ---------------------------------------------------------------------------------------------
// The agent

type Phase = 'binding' | 'plain-udp' | 'matconnect' | 'serving' | 'closing' | 'finished';

interface ClientStep {
  path: StepPath;
  startedAt: number;
  endedAt: number | null;
  pingsSent: number;
  pongsRecv: number;
}

interface ServerStep {
  path: StepPath;
  firstAt: number;
  lastAt: number;
  pingsRecv: number;
  pongsSent: number;
}

/** One try: resolves once it connected or failed (or `signal` aborted it), its socket closed and no
 * timer left behind (a serving process runs the next try). */
export function matconnect(cfg: MatconnectConfig, signal?: AbortSignal): Promise<AgentResult> {
  return new Promise((resolve) => run(cfg, resolve, signal));
}

function run(cfg: MatconnectConfig, done: (r: AgentResult) => void, signal?: AbortSignal): void {
  const log = makeLogger(cfg.role);
  const peerRole = otherRole(cfg.role);
  const isClient = cfg.role === 'a';
  const peerText = formatEndpoint(cfg.peerPublic);
  const sock = dgram.createSocket({ type: 'udp4' });

  let phase: Phase = 'binding';
  let bound = false;
  let seq = 0;
  /** NMX_PUBLIC_IP : bound port (the header we send) */
  let selfPublic: Endpoint = { address: cfg.publicIp, port: cfg.localPort };
  let header: Buffer = Buffer.alloc(0);

  const stats = { sent: 0, pingsSent: 0, pingsRecv: 0, pongsSent: 0, pongsRecv: 0, closesSent: 0, closesRecv: 0, dropped: 0, sendErrors: 0 };
  let lastDrop = '';

  // client state
  const clientSteps: ClientStep[] = [];
  // server state
  const serverSteps = new Map<StepPath, ServerStep>();
  let serverStartedAt = 0;

  let pingTimer: NodeJS.Timeout | undefined;
  let stepTimer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  const closes = tryTimers();
  const clearTimers = (): void => {
    clearInterval(pingTimer);
    clearTimeout(stepTimer);
    clearTimeout(deadlineTimer);
    closes.clearAll();
  };

  /** Sign a message and send it, headered (matconnect: header + `ep` in the signed body) or plain. */
  const send = (t: MessageType, to: Endpoint, headered: boolean, onSent?: () => void): void => {
    if (phase === 'finished') return;
    const msg: Message = { t, s: cfg.session, r: cfg.role, ts: Date.now(), n: ++seq };
    if (headered) msg.ep = formatEndpoint(selfPublic);
    const signed = sign(msg, cfg.secret);
    const wire = headered ? Buffer.concat([header, signed]) : signed;
    stats.sent++;
    sock.send(wire, to.port, to.address, (err) => {
      if (err) {
        stats.sendErrors++;
        if (stats.sendErrors <= 5 || stats.sendErrors % 50 === 0) {
          log(`send ${headered ? 'headered ' : ''}${t} #${msg.n} to ${formatEndpoint(to)} failed: ${err.message} (send errors so far: ${stats.sendErrors})`);
        }
      }
      onSent?.();
    });
  };

  const finish = (result: AgentResult): void => {
    if (phase === 'finished') return;
    phase = 'finished';
    clearTimers();
    log(
      `exit ${result.code}: pings sent ${stats.pingsSent}/recv ${stats.pingsRecv}, pongs sent ${stats.pongsSent}/recv ${stats.pongsRecv}, ` +
        `closes sent ${stats.closesSent}/recv ${stats.closesRecv}, dropped ${stats.dropped}, send errors ${stats.sendErrors}`,
    );
    try {
      sock.close();
    } catch {
      // already closed
    }
    signal?.removeEventListener('abort', onAbort);
    done(result);
  };
  const onAbort = (): void => finish(failed('stopped by the harness'));

  const stepsJson = (): Step[] => {
    if (isClient) {
      return clientSteps.map((s) => ({
        path: s.path,
        ok: false,
        ms: round1((s.endedAt ?? performance.now()) - s.startedAt),
        pingsSent: s.pingsSent,
        pongsRecv: s.pongsRecv,
      }));
    }
    return [...serverSteps.values()].map((s) => ({
      path: s.path,
      ok: false,
      ms: round1(s.lastAt - s.firstAt),
      pingsRecv: s.pingsRecv,
      pongsSent: s.pongsSent,
    }));
  };

  const succeed = (path: StepPath, peer: Endpoint, ttd: number, extra: Record<string, unknown> = {}): void => {
    const steps = stepsJson().map((s) => ({ ...s, ok: s.path === path }));
    finish(connected({ path, peer: formatEndpoint(peer), timeToDirectMs: round1(ttd), steps, ...extra }));
  };

  /** a clean failure, or (with `code`) a fault */
  const fail = (reason: string, code?: number): void => {
    log(`FAILED: ${reason}`);
    finish(code === undefined ? failed(reason, { steps: stepsJson() }) : fault(reason, code, { steps: stepsJson() }));
  };

  const dropsText = (): string => (stats.dropped > 0 ? `; dropped ${stats.dropped} datagrams (last: ${lastDrop})` : '');

  // --- client: plain-udp, then matconnect ------------------------------------------------------

  const currentStep = (): ClientStep | undefined => clientSteps[clientSteps.length - 1];

  const sendPing = (): void => {
    const step = currentStep();
    if (step === undefined || phase !== step.path) return;
    const headered = step.path === 'matconnect';
    step.pingsSent++;
    stats.pingsSent++;
    if (step.pingsSent === 1 || step.pingsSent % 10 === 0) {
      log(`${step.path}: sending ${headered ? `headered ping (reply to ${formatEndpoint(selfPublic)})` : 'ping'} #${step.pingsSent} to ${peerText}`);
    }
    send('ping', cfg.peerPublic, headered);
  };

  const startStep = (path: StepPath): void => {
    phase = path;
    clientSteps.push({ path, startedAt: performance.now(), endedAt: null, pingsSent: 0, pongsRecv: 0 });
    clearInterval(pingTimer);
    pingTimer = setInterval(sendPing, PING_INTERVAL_MS);
    stepTimer = setTimeout(onStepExpired, cfg.timeoutMs);
    sendPing();
  };

  const stepSummary = (s: ClientStep): string =>
    `${s.path}: sent ${s.pingsSent} ${s.path === 'matconnect' ? `headered pings (replies asked at ${formatEndpoint(selfPublic)})` : 'pings'} ` +
    `to ${peerText} in ${round1((s.endedAt ?? performance.now()) - s.startedAt)} ms, received ${s.pongsRecv} pongs`;

  const onStepExpired = (): void => {
    const step = currentStep();
    if (step === undefined || phase !== step.path) return;
    step.endedAt = performance.now();
    clearInterval(pingTimer);
    if (step.path === 'plain-udp') {
      log(`step change: ${stepSummary(step)}; switching to matconnect (header ${formatEndpoint(selfPublic)}) for ${cfg.timeoutMs} ms`);
      startStep('matconnect');
      return;
    }
    fail(`no pong in either step (${clientSteps.map(stepSummary).join('; ')})${dropsText()}`);
  };

  const confirm = (path: StepPath, src: Endpoint): void => {
    const now = performance.now();
    const step = currentStep()!;
    step.endedAt = now;
    phase = 'closing';
    clearTimers();
    const ttd = now - clientSteps[0]!.startedAt;
    if (path !== step.path) log(`late ${path} pong during step ${step.path}: the ${path} path works (slowly)`);
    log(`${path} path confirmed by pong from ${formatEndpoint(src)} after ${round1(ttd)} ms; sending ${CLOSE_COUNT} ${path === 'matconnect' ? 'headered ' : ''}closes to ${peerText}`);
    let sent = 0;
    const sendClose = (): void => {
      sent++;
      stats.closesSent++;
      const last = sent >= CLOSE_COUNT;
      send('close', cfg.peerPublic, path === 'matconnect', last ? () => succeed(path, src, ttd) : undefined);
      if (!last) closes.later(sendClose, CLOSE_INTERVAL_MS);
    };
    sendClose();
  };

  // --- server: answer both kinds at once --------------------------------------------------------

  const serverStep = (path: StepPath): ServerStep => {
    const now = performance.now();
    if (serverStartedAt === 0) serverStartedAt = now;
    let s = serverSteps.get(path);
    if (s === undefined) {
      s = { path, firstAt: now, lastAt: now, pingsRecv: 0, pongsSent: 0 };
      serverSteps.set(path, s);
      log(`first ${path} datagram from the client`);
    }
    s.lastAt = now;
    return s;
  };

  const onServerDeadline = (): void => {
    if (phase !== 'serving') return;
    const plain = serverSteps.get('plain-udp');
    const mc = serverSteps.get('matconnect');
    fail(
      `no verified close from ${peerRole} within ${cfg.waitMs + 2 * cfg.timeoutMs} ms ` +
        `(plain-udp: received ${plain?.pingsRecv ?? 0} pings, sent ${plain?.pongsSent ?? 0} pongs to their source; ` +
        `matconnect: received ${mc?.pingsRecv ?? 0} headered pings, sent ${mc?.pongsSent ?? 0} headered pongs to their header address)${dropsText()}`,
    );
  };

  // --- receiving -------------------------------------------------------------------------------

  const drop = (src: Endpoint, size: number, reason: string): void => {
    stats.dropped++;
    lastDrop = `${reason} from ${formatEndpoint(src)}`;
    if (stats.dropped <= 20 || stats.dropped % 100 === 0) log(`drop ${size} B from ${formatEndpoint(src)}: ${reason} (dropped so far: ${stats.dropped})`);
  };

  const replay = new ReplayGuard();
  sock.on('message', (buf, rinfo) => {
    if (phase === 'finished' || phase === 'closing' || phase === 'binding') return;
    const src: Endpoint = { address: rinfo.address, port: rinfo.port };
    const { replyTo, body, headerError } = splitDatagram(buf);
    const framing = replyTo !== null ? `headered (reply to ${formatEndpoint(replyTo)}) ` : '';
    if (headerError !== undefined) {
      drop(src, buf.length, `bad matconnect header: ${headerError}`);
      return;
    }
    // authenticate before anything else: never answer (least of all to a header address) unverified
    const res = verify(body, cfg.secret, { session: cfg.session, self: cfg.role, replay });
    if (!res.ok) {
      drop(src, buf.length, `${framing}${res.reason}${replyTo !== null ? '; not answering the header address' : ''}`);
      return;
    }
    const m = res.msg;
    if (m.r !== peerRole) {
      drop(src, buf.length, `${framing}${m.t} from role ${m.r}`);
      return;
    }
    if (replyTo !== null) {
      const ep = signedEndpoint(body);
      if (ep === null || ep.address !== replyTo.address || ep.port !== replyTo.port) {
        drop(src, buf.length, `${framing}${m.t} #${m.n}: header does not match the signed ep ${ep ? formatEndpoint(ep) : '(none)'}; not answering`);
        return;
      }
    }
    const path: StepPath = replyTo !== null ? 'matconnect' : 'plain-udp';
    const srcText = formatEndpoint(src);

    if (isClient) {
      if (m.t !== 'pong') {
        drop(src, buf.length, `${framing}unexpected ${m.t} (the client only takes pongs)`);
        return;
      }
      stats.pongsRecv++;
      const step = currentStep();
      if (step !== undefined && step.path === path) step.pongsRecv++;
      log(`${framing}pong #${m.n} from ${srcText}`);
      confirm(path, src);
      return;
    }

    // server
    switch (m.t) {
      case 'ping': {
        const step = serverStep(path);
        step.pingsRecv++;
        stats.pingsRecv++;
        // plain: answer the source, like any UDP server; matconnect: answer the (verified) header address
        const to = replyTo ?? src;
        if (step.pingsRecv <= 3 || step.pingsRecv % 10 === 0) {
          log(`${framing}ping #${m.n} from ${srcText}; answering ${replyTo !== null ? 'headered pong to the header address' : 'pong to the source'} ${formatEndpoint(to)}`);
        }
        send('pong', to, replyTo !== null);
        step.pongsSent++;
        stats.pongsSent++;
        return;
      }
      case 'close': {
        serverStep(path);
        stats.closesRecv++;
        const ttd = performance.now() - serverStartedAt;
        log(`${framing}close #${m.n} from ${srcText}: ${path} path confirmed after ${round1(ttd)} ms (from the first datagram)`);
        succeed(path, src, ttd, replyTo !== null ? { replyTo: formatEndpoint(replyTo) } : {});
        return;
      }
      default:
        drop(src, buf.length, `${framing}unexpected ${m.t} (the server takes pings and closes)`);
    }
  });

  sock.on('error', (err) => {
    if (phase === 'finished') return;
    if (!bound) {
      fail(`cannot bind UDP 0.0.0.0:${cfg.localPort}: ${err.message}`, 3);
      return;
    }
    log(`socket error: ${err.message}`);
  });

  if (signal?.aborted) return onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  sock.bind({ port: cfg.localPort, address: '0.0.0.0', exclusive: true }, () => {
    bound = true;
    if (phase !== 'binding') return;
    const a = sock.address();
    selfPublic = { address: cfg.publicIp, port: a.port };
    try {
      header = encodeHeader(selfPublic);
    } catch (err) {
      fail((err as Error).message, 3);
      return;
    }
    log(
      `bound ${a.address}:${a.port}; session ${JSON.stringify(cfg.session)}; public ${formatEndpoint(selfPublic)}; ` +
        (isClient
          ? `client: plain-udp to ${peerText} for ${cfg.timeoutMs} ms, then matconnect for ${cfg.timeoutMs} ms`
          : `server: answering plain pings to their source and headered pings to their header, for up to ${cfg.waitMs + 2 * cfg.timeoutMs} ms`),
    );
    if (isClient) {
      startStep('plain-udp');
    } else {
      phase = 'serving';
      deadlineTimer = setTimeout(onServerDeadline, cfg.waitMs + 2 * cfg.timeoutMs);
    }
  });
}

/** Run only as a program (node, tsx, or the harness's esbuild bundle), not when imported by tests. */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) runPeer(readMatconnectConfig, matconnect, 'matconnect');
