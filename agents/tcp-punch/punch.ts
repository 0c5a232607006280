// TCP simultaneous open (RFC 5382, seed 003) (library; the entry point is peer.ts, and agents/fallback
// runs it as its second step). From one local port it learns its TCP mapping at the rendezvous, then
// connects to the peer's advertised endpoint again and again (each try abandoned after 250 ms) while
// the peer does the same towards it. When both NATs have a conntrack entry for the pair, the crossing
// SYNs meet and the kernels complete a simultaneous open. Both sides then exchange a signed hello
// (ping/pong) to prove they reached the genuine peer.
//
// Unlike UDP there is no peer-reflexive rescue: a SYN arriving from an unexpected port finds no socket
// (a listener on the punching port would need SO_REUSEPORT beside the connecting socket), so both
// mappings must be endpoint-independent.
//
// Contract as agents/udp-punch/peer.ts; verdict path "direct-tcp".
import net from 'node:net';
import {
  type Endpoint,
  formatEndpoint,
  makeLogger,
  otherRole,
  parseEndpoint,
  type PeerConfig,
  ReplayGuard,
  round1,
  sign,
  verify,
} from '../udp-punch/protocol.ts';
import type { PunchResult } from '../udp-punch/punch.ts';

const TRY_MS = 250;
const RETRY_GAP_MS = 20;

export interface TcpRendezvousOptions {
  /** the session to register under (the fallback agent suffixes its steps' sessions) */
  session: string;
  /** connect from this local port (the punching port), or from any */
  localPort?: number;
  /** an endpoint to announce instead of the observed one (the relay step: the relay's public listener) */
  declare?: Endpoint;
}

/**
 * Register with the TCP rendezvous and resolve to the endpoint it gives for the peer (the peer's
 * observed mapping, or what the peer declared). Rejects after `waitMs`.
 */
export function tcpRendezvous(cfg: PeerConfig, o: TcpRendezvousOptions, replay: ReplayGuard): Promise<Endpoint> {
  const log = makeLogger(cfg.role);
  return new Promise((resolve, reject) => {
    const rdv = net.connect({ host: cfg.rendezvous.address, port: cfg.rendezvous.port, localAddress: '0.0.0.0', ...(o.localPort !== undefined ? { localPort: o.localPort } : {}) });
    const timer = setTimeout(() => {
      rdv.destroy();
      reject(new Error(`the rendezvous did not pair us within ${cfg.waitMs} ms`));
    }, cfg.waitMs);
    let text = '';
    rdv.on('connect', () => {
      const reg = { t: 'reg' as const, s: o.session, r: cfg.role, ts: Date.now(), n: 1, ...(o.declare ? { ep: formatEndpoint(o.declare) } : {}) };
      rdv.write(sign(reg, cfg.secret).toString() + '\n');
    });
    rdv.on('error', (e) => log(`rendezvous connection: ${e.message}`));
    rdv.on('data', (chunk) => {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      const res = verify(Buffer.from(text.slice(0, nl)), cfg.secret, { session: o.session, self: cfg.role, replay });
      text = text.slice(nl + 1);
      if (!res.ok || res.msg.t !== 'peer' || res.msg.r !== 'rdv' || !res.msg.ep) {
        log(`drop rendezvous line: ${res.ok ? `unexpected ${res.msg.t}` : res.reason}`);
        return;
      }
      rdv.destroy();
      clearTimeout(timer);
      resolve(parseEndpoint(res.msg.ep));
    });
  });
}

/**
 * Signed hello over an established stream: send `ping`, answer a `ping` with `pong`; resolves once the
 * peer's ping or pong verified (the peer is the genuine one). Never rejects; junk lines are dropped.
 */
export function helloOver(sock: net.Socket, cfg: PeerConfig, session: string, replay: ReplayGuard, onHello: (via: 'ping' | 'pong') => void): void {
  const log = makeLogger(cfg.role);
  let seq = 0;
  const line = (t: 'ping' | 'pong') => sign({ t, s: session, r: cfg.role, ts: Date.now(), n: ++seq }, cfg.secret).toString() + '\n';
  let text = '';
  let done = false;
  sock.write(line('ping'));
  sock.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
    if (text.length > 64 * 1024) return sock.destroy();
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const res = verify(Buffer.from(text.slice(0, nl)), cfg.secret, { session, self: cfg.role, replay });
      text = text.slice(nl + 1);
      if (!res.ok) {
        log(`drop line: ${res.reason}`);
        continue;
      }
      if (res.msg.t === 'ping') sock.write(line('pong'));
      if ((res.msg.t === 'ping' || res.msg.t === 'pong') && !done) {
        done = true;
        onHello(res.msg.t);
      }
    }
  });
}

/** TCP simultaneous open under `session` (default NMX_SESSION). */
export function punchTcp(cfg: PeerConfig, session = cfg.session): Promise<PunchResult> {
  const log = makeLogger(cfg.role);
  const peerRole = otherRole(cfg.role);
  const replay = new ReplayGuard();
  const started = performance.now();
  return new Promise((resolve) => {
    let finished = false;
    const finish = (ok: boolean, fields: Record<string, unknown>, code: number) => {
      if (finished) return;
      finished = true;
      resolve({ verdict: { ok, path: ok ? 'direct-tcp' : null, peer: null, ...fields }, code });
    };

    // 1. learn the peer's TCP endpoint from the rendezvous, from our punching port
    tcpRendezvous(cfg, { session, localPort: cfg.localPort }, replay).then(punch, (e: Error) => finish(false, { reason: e.message }, 1));

    // 2. connect to the peer from the same port until the crossing SYNs meet
    function punch(peer: Endpoint): void {
      const paired = performance.now();
      log(`paired after ${round1(paired - started)} ms: peer ${peerRole} at ${formatEndpoint(peer)}; connecting for up to ${cfg.timeoutMs} ms`);
      let attempts = 0;
      const errors = new Map<string, number>();
      const live = new Set<net.Socket>();
      const window = setTimeout(() => {
        for (const s of live) s.destroy();
        const errs = [...errors].map(([k, v]) => `${k} ×${v}`).join(', ') || 'none';
        finish(false, { reason: `no TCP connection to ${formatEndpoint(peer)} within ${cfg.timeoutMs} ms (${attempts} connects; errors: ${errs})` }, 1);
      }, cfg.timeoutMs);
      const attempt = () => {
        if (finished) return;
        attempts++;
        const sock = net.connect({ host: peer.address, port: peer.port, localPort: cfg.localPort, localAddress: '0.0.0.0' });
        live.add(sock);
        const giveUp = setTimeout(() => sock.destroy(), TRY_MS);
        let connected = false;
        sock.on('connect', () => {
          connected = true;
          clearTimeout(giveUp);
          log(`connected to ${formatEndpoint(peer)} on connect #${attempts}; sending hello`);
          helloOver(sock, cfg, session, replay, (via) => {
            const ttd = round1(performance.now() - paired);
            log(`direct TCP path to ${formatEndpoint(peer)} confirmed by ${via} after ${ttd} ms`);
            clearTimeout(window);
            // let our pong leave before finishing
            const ok = () => {
              sock.destroy();
              finish(true, { peer: formatEndpoint(peer), timeToDirectMs: ttd }, 0);
            };
            sock.end(ok);
            setTimeout(ok, 50);
          });
        });
        sock.on('error', (e: NodeJS.ErrnoException) => errors.set(e.code ?? e.message, (errors.get(e.code ?? e.message) ?? 0) + 1));
        sock.on('close', () => {
          live.delete(sock);
          clearTimeout(giveUp);
          if (!connected && !finished) setTimeout(attempt, RETRY_GAP_MS);
        });
      };
      attempt();
    }
  });
}
