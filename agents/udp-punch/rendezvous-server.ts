// netpunch rendezvous server (library; the entry point is rendezvous.ts): record the endpoint each
// peer's `reg` is observed from, and introduce the two peers of a session to each other.
//
// stdout: one line {"ready":true,"listen":"ip:port"} once the socket is bound; nothing else.
// stderr: a log line for every accepted or rejected datagram, prefixed with the session if known.
// Runs until SIGTERM/SIGINT, then closes the socket and exits 0. Exit 2 on bad environment,
// exit 1 if the socket cannot be bound.

import dgram from 'node:dgram';
import {
  configOrExit,
  type Endpoint,
  type Message,
  type RendezvousConfig,
  type Role,
  formatEndpoint,
  otherRole,
  peekSession,
  readRendezvousConfig,
  ReplayGuard,
  sameEndpoint,
  sign,
  stamp,
  verify,
} from '../sdk/index.ts';

/** Sessions silent for this long are forgotten. */
const SESSION_TTL_MS = 60_000;
const SWEEP_INTERVAL_MS = 10_000;

interface PeerRecord {
  ep: Endpoint;
  regs: number;
}

interface Session {
  peers: Partial<Record<Role, PeerRecord>>;
  lastSeen: number;
}

function log(session: string | null, line: string): void {
  process.stderr.write(`${stamp()} [${session ?? '-'}] ${line}\n`);
}

/** Called just before each genuine introduction is sent: `wire` is the signed datagram going to `to`.
 * The shipped rendezvous has none; rogue-rendezvous.ts uses it to attack the peers. */
export interface RendezvousHooks {
  /** another server to run in this process on the same address (the fallback agent's TCP rendezvous):
   * the ready line waits for it, a failure to start it is exit 1, and shutdown closes it */
  beside?: (cfg: RendezvousConfig) => Promise<{ close: () => Promise<void> }>;
  onIntroduce?: (ctx: { session: string; to: Endpoint; ep: Endpoint; wire: Buffer; sock: dgram.Socket; log: (line: string) => void }) => void;
}

export function main(hooks: RendezvousHooks = {}): void {
  const cfg = configOrExit(readRendezvousConfig, 'rdv');
  run(cfg, hooks);
}

function run(cfg: RendezvousConfig, hooks: RendezvousHooks): void {
  const sessions = new Map<string, Session>();
  const sock = dgram.createSocket({ type: 'udp4' });
  const stats = { accepted: 0, rejected: 0, sent: 0, sendErrors: 0 };
  let seq = 0;
  let bound = false;
  let closing = false;
  let besideServer: { close: () => Promise<void> } | null = null;

  const send = (session: string, to: Endpoint, ep: Endpoint): void => {
    const msg: Message = { t: 'peer', s: session, r: 'rdv', ts: Date.now(), n: ++seq, ep: formatEndpoint(ep) };
    const wire = sign(msg, cfg.secret);
    hooks.onIntroduce?.({ session, to, ep, wire, sock, log: (line) => log(session, line) });
    stats.sent++;
    sock.send(wire, to.port, to.address, (err) => {
      if (err) {
        stats.sendErrors++;
        log(session, `send peer #${msg.n} to ${formatEndpoint(to)} failed: ${err.message}`);
      }
    });
  };

  const reject = (session: string | null, src: Endpoint, size: number, reason: string): void => {
    stats.rejected++;
    log(session, `reject ${size} B from ${formatEndpoint(src)}: ${reason}`);
  };

  const onReg = (m: Message, src: Endpoint): void => {
    const role = m.r as Role; // verify() rejected r === 'rdv' (own role)
    const now = Date.now();
    let sess = sessions.get(m.s);
    if (sess === undefined) {
      sess = { peers: {}, lastSeen: now };
      sessions.set(m.s, sess);
    }
    sess.lastSeen = now;
    const prev = sess.peers[role];
    const changed = prev === undefined || !sameEndpoint(prev.ep, src);
    const rec: PeerRecord = { ep: src, regs: (prev?.regs ?? 0) + 1 };
    sess.peers[role] = rec;
    stats.accepted++;

    const peerRole = otherRole(role);
    const other = sess.peers[peerRole];
    const srcText = formatEndpoint(src);
    const what =
      prev === undefined
        ? `reg #${m.n} from ${role} at ${srcText} (new)`
        : changed
          ? `reg #${m.n} from ${role}: endpoint changed ${formatEndpoint(prev.ep)} -> ${srcText}`
          : `reg #${m.n} from ${role} at ${srcText} (reg ${rec.regs})`;
    if (other === undefined) {
      log(m.s, `accept ${what}; waiting for ${peerRole}`);
      return;
    }
    log(m.s, `accept ${what}; answering with ${peerRole} at ${formatEndpoint(other.ep)}`);
    send(m.s, src, other.ep);
    if (changed) {
      // First time the pair completes (or this side moved): tell the other side right away
      // rather than waiting for its next reg — it may have stopped registering already.
      log(m.s, `push: telling ${peerRole} at ${formatEndpoint(other.ep)} that ${role} is at ${srcText}`);
      send(m.s, other.ep, src);
    }
  };

  // a replayed reg from another source would move a peer's endpoint to the replayer: refuse repeats
  const replay = new ReplayGuard();
  sock.on('message', (buf, rinfo) => {
    if (closing) return;
    const src: Endpoint = { address: rinfo.address, port: rinfo.port };
    try {
      const res = verify(buf, cfg.secret, { self: 'rdv', replay });
      if (!res.ok) {
        const claimed = peekSession(buf);
        reject(null, src, buf.length, res.reason + (claimed !== null ? ` (claims session ${claimed})` : ''));
        return;
      }
      const m = res.msg;
      if (m.t !== 'reg') {
        reject(m.s, src, buf.length, `unexpected ${m.t} #${m.n} from ${m.r} (only reg is served)`);
        return;
      }
      onReg(m, src);
    } catch (err) {
      // Nothing above should throw; never let one datagram take the server down.
      reject(null, src, buf.length, `internal error: ${(err as Error).message}`);
    }
  });

  sock.on('error', (err) => {
    if (!bound) {
      log(null, `cannot bind UDP ${formatEndpoint(cfg.listen)}: ${err.message}`);
      process.exit(1);
    }
    log(null, `socket error: ${err.message}`);
  });

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - SESSION_TTL_MS;
    for (const [id, sess] of sessions) {
      if (sess.lastSeen < cutoff) {
        sessions.delete(id);
        log(id, `forgotten after ${SESSION_TTL_MS / 1000} s of silence`);
      }
    }
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();

  const shutdown = (sig: NodeJS.Signals) => (): void => {
    if (closing) return;
    closing = true;
    clearInterval(sweeper);
    log(
      null,
      `${sig}: shutting down (${sessions.size} sessions, accepted ${stats.accepted}, rejected ${stats.rejected}, ` +
        `sent ${stats.sent}, send errors ${stats.sendErrors})`,
    );
    const done = (): void => process.exit(0);
    void besideServer?.close();
    if (!bound) done();
    try {
      sock.close(done);
    } catch {
      done();
    }
    setTimeout(done, 500).unref();
  };
  process.on('SIGTERM', shutdown('SIGTERM'));
  process.on('SIGINT', shutdown('SIGINT'));

  sock.bind({ port: cfg.listen.port, address: cfg.listen.address, exclusive: true }, () => {
    bound = true;
    const a = sock.address();
    const listen = `${a.address}:${a.port}`;
    log(null, `listening on ${listen}`);
    const ready = () => process.stdout.write(`${JSON.stringify({ ready: true, listen })}\n`);
    if (!hooks.beside) return ready();
    hooks.beside(cfg).then(
      (server) => {
        besideServer = server;
        ready();
      },
      (err: Error) => {
        log(null, err.message);
        process.exit(1);
      },
    );
  });
}
