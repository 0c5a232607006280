// TCP simultaneous open (RFC 5382, seed 003) (library; the entry point is peer.ts, and agents/fallback
// runs it as its second step). From one local port it learns its TCP mapping at the rendezvous, then
// connects to the peer's advertised endpoint again and again (each try abandoned after 250 ms) while
// the peer does the same towards it. When both NATs have a conntrack entry for the pair, the crossing
// SYNs meet and the kernels complete a simultaneous open. Both sides then exchange a signed hello
// (ping/pong) to prove they reached the genuine peer.
//
// Unlike UDP there is no peer-reflexive rescue in the simultaneous open: a SYN arriving from an
// unexpected port finds no socket, so both mappings must be endpoint-independent. A listener beside the
// connecting socket would need SO_REUSEPORT (Node ≥ 22.12), so the listening is a phase of its own.
//
// Contract as agents/udp-punch/peer.ts; verdict path "direct-tcp".
import net from 'node:net';
import {
  type AgentResult,
  connected,
  type Endpoint,
  failed,
  formatEndpoint,
  makeLogger,
  otherRole,
  parseEndpoint,
  type PeerConfig,
  ReplayGuard,
  type Role,
  round1,
  sign,
  tryTimers,
  verify,
} from '../sdk/index.ts';

const TRY_MS = 250;
const RETRY_GAP_MS = 20;

export interface TcpRendezvousOptions {
  /** the session to register under (the fallback agent suffixes its steps' sessions) */
  session: string;
  /** connect from this local port (the punching port), or from any */
  localPort?: number;
  /** an endpoint to announce instead of the observed one (the relay step: the relay's public listener) */
  declare?: Endpoint;
  /** aborting it closes the connection and rejects */
  signal?: AbortSignal;
}

/**
 * Register with the TCP rendezvous and resolve to the endpoint it gives for the peer (the peer's
 * observed mapping, or what the peer declared). Rejects after `waitMs`.
 */
export function tcpRendezvous(cfg: PeerConfig, o: TcpRendezvousOptions, replay: ReplayGuard): Promise<Endpoint> {
  const log = makeLogger(cfg.role);
  return new Promise((resolve, reject) => {
    const rdv = net.connect({ host: cfg.rendezvous.address, port: cfg.rendezvous.port, localAddress: '0.0.0.0', ...(o.localPort !== undefined ? { localPort: o.localPort } : {}) });
    const end = (why: string) => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      rdv.destroy();
      if (why) reject(new Error(why));
    };
    const timer = setTimeout(() => end(`the rendezvous did not pair us within ${cfg.waitMs} ms`), cfg.waitMs);
    const onAbort = () => end('stopped by the harness');
    if (o.signal?.aborted) return end('stopped by the harness');
    o.signal?.addEventListener('abort', onAbort, { once: true });
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
      end('');
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

/**
 * A direct TCP connection under `session` (default NMX_SESSION), in three phases that share the punch
 * window (a quarter, a quarter, a half):
 *   1. b listens on its punching port while a connects to b's mapping (from its punching port + 1):
 *      this gets through whenever b's NAT filters endpoint-independently (full cone, DMZ) — a's SYN
 *      finds a listener, where with both sides connecting it could find no socket and be answered
 *      with RST;
 *   2. the same the other way round;
 *   3. both connect at once from their punching ports (simultaneous open): this gets through when both
 *      map endpoint-independently, so each aims at the other's real mapping.
 * The rendezvous closes its connections first, so the punching port is free for the listener (libuv
 * binds with SO_REUSEADDR).
 */
export function punchTcp(cfg: PeerConfig, session = cfg.session, signal?: AbortSignal): Promise<AgentResult> {
  const log = makeLogger(cfg.role);
  const peerRole = otherRole(cfg.role);
  const replay = new ReplayGuard();
  const started = performance.now();
  return new Promise((resolve) => {
    let finished = false;
    // every timer of the try, cleared when it finishes (a serving process runs the next try)
    const { later, clearAll: clearTimers } = tryTimers();
    /** closes what the punching phases opened (a serving process runs the next try on the same port) */
    let cleanup = () => {};
    const onAbort = () => finish(failed('stopped by the harness'));
    const finish = (result: AgentResult) => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      cleanup();
      clearTimers();
      resolve(result);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    // 1. learn the peer's TCP endpoint from the rendezvous, from our punching port
    tcpRendezvous(cfg, { session, localPort: cfg.localPort, ...(signal ? { signal } : {}) }, replay).then(connect, (e: Error) => finish(failed(e.message)));

    function connect(peer: Endpoint): void {
      const paired = performance.now();
      const quarter = Math.max(1, Math.round(cfg.timeoutMs / 4));
      const phases: Array<{ name: string; listener: Role | null; ms: number }> = [
        { name: 'b listens, a connects', listener: 'b', ms: quarter },
        { name: 'a listens, b connects', listener: 'a', ms: quarter },
        { name: 'simultaneous open', listener: null, ms: cfg.timeoutMs - 2 * quarter },
      ];
      log(`paired after ${round1(paired - started)} ms: peer ${peerRole} at ${formatEndpoint(peer)}; ${phases.map((p) => `${p.name} ${p.ms} ms`).join(', then ')}`);
      const errors = new Map<string, number>();
      const live = new Set<net.Socket>();
      let server: net.Server | null = null;
      let attempts = 0;
      let phase = 0;
      let phaseTimer: NodeJS.Timeout | undefined;
      cleanup = () => {
        clearTimeout(phaseTimer);
        server?.close();
        for (const s of live) s.destroy();
      };
      if (finished) return cleanup();

      const proven = (sock: net.Socket, how: string) => (via: 'ping' | 'pong') => {
        const ttd = round1(performance.now() - paired);
        log(`direct TCP path to ${formatEndpoint(peer)} (${how}) confirmed by ${via} after ${ttd} ms`);
        clearTimeout(phaseTimer);
        server?.close();
        for (const s of live) if (s !== sock) s.destroy();
        // let our pong leave before finishing
        const ok = () => {
          sock.destroy();
          finish(connected({ path: 'direct-tcp', peer: formatEndpoint(peer), timeToDirectMs: ttd, how }));
        };
        sock.end(ok);
        later(ok, 50);
      };

      const attempt = (how: string) => {
        if (finished || phases[phase]?.name !== how) return;
        attempts++;
        // towards a listener, connect from the next port: a SYN from the punching port would leave a
        // conntrack entry for the very pair of endpoints the other direction and the simultaneous open
        // use, and the listener's SYN-ACK (its own sequence number) would then be invalid there
        const localPort = phases[phase]!.listener ? cfg.localPort + 1 : cfg.localPort;
        const sock = net.connect({ host: peer.address, port: peer.port, localPort, localAddress: '0.0.0.0' });
        live.add(sock);
        const giveUp = later(() => sock.destroy(), TRY_MS);
        let isConnected = false;
        sock.on('connect', () => {
          isConnected = true;
          clearTimeout(giveUp);
          log(`connected to ${formatEndpoint(peer)} on connect #${attempts} (${how}); sending hello`);
          helloOver(sock, cfg, session, replay, proven(sock, how));
        });
        sock.on('error', (e: NodeJS.ErrnoException) => errors.set(e.code ?? e.message, (errors.get(e.code ?? e.message) ?? 0) + 1));
        sock.on('close', () => {
          live.delete(sock);
          clearTimeout(giveUp);
          if (!isConnected && !finished) later(() => attempt(how), RETRY_GAP_MS);
        });
      };

      const listen = (how: string) => {
        const srv = net.createServer((sock) => {
          live.add(sock);
          sock.on('error', (e) => log(`accepted connection: ${e.message}`));
          sock.on('close', () => live.delete(sock));
          log(`accepted ${sock.remoteAddress}:${sock.remotePort} (${how}); sending hello`);
          helloOver(sock, cfg, session, replay, proven(sock, how));
        });
        srv.on('error', (e: NodeJS.ErrnoException) => errors.set(`listen ${e.code ?? e.message}`, (errors.get(`listen ${e.code ?? e.message}`) ?? 0) + 1));
        srv.listen(cfg.localPort, '0.0.0.0');
        server = srv;
      };

      const next = () => {
        if (finished) return;
        // end the phase that ran: stop listening, drop the connects in flight (not an accepted hello)
        server?.close();
        server = null;
        for (const s of live) if (s.connecting) s.destroy();
        const p = phases[phase];
        if (!p) {
          const errs = [...errors].map(([k, v]) => `${k} ×${v}`).join(', ') || 'none';
          finish(failed(`no TCP connection to ${formatEndpoint(peer)} within ${cfg.timeoutMs} ms (${phases.map((x) => x.name).join(', ')}; ${attempts} connects; errors: ${errs})`));
          return;
        }
        if (p.listener === cfg.role) listen(p.name);
        else attempt(p.name);
        phaseTimer = later(() => {
          phase++;
          next();
        }, p.ms);
      };
      next();
    }
  });
}
