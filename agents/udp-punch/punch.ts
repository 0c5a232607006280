// netpunch peer (library; the entry point is peer.ts, and agents/fallback runs it as its first step):
// register with the rendezvous, learn the other peer's endpoint, punch.
//
// One UDP socket (bound to 0.0.0.0:NMX_LOCAL_PORT) carries everything: registrations, pings,
// pongs and closes. Logs go to stderr; exactly one JSON verdict line goes to stdout at the end.
//
//   exit 0  {"ok":true,"path":"direct-udp","peer":"ip:port","timeToDirectMs":12.3}
//   exit 1  {"ok":false,"path":null,"peer":null,"reason":"..."}   (clean failure)
//   exit 2  bad environment (one stderr line, no stdout)
//   exit 3  {"ok":false,...,"reason":"cannot bind ..."}            (fault: socket unusable)
//   exit 143 / 130 on SIGTERM / SIGINT, no stdout

import dgram from 'node:dgram';
import {
  type AgentResult,
  connected,
  type Endpoint,
  failed,
  fault,
  formatEndpoint,
  makeLogger,
  type Message,
  type MessageType,
  otherRole,
  parseEndpoint,
  type PeerConfig,
  ReplayGuard,
  round1,
  sameEndpoint,
  sign,
  tryTimers,
  verify,
} from '../sdk/index.ts';

const REG_INTERVAL_MS = 50;
const PING_INTERVAL_MS = 20;
const CLOSE_COUNT = 3;
const CLOSE_INTERVAL_MS = 10;

type Phase = 'registering' | 'punching' | 'closing' | 'holding' | 'rechecking' | 'finished';


/**
 * Punch through with UDP: resolves once the path is confirmed (and held, with NMX_HOLD_MS), or the
 * attempt failed, or `signal` aborted it. The socket is closed and no timer is left by then; the caller
 * prints the verdict (the fallback agent goes on to its next step instead).
 */
export function punchUdp(cfg: PeerConfig, signal?: AbortSignal): Promise<AgentResult> {
  return new Promise((resolve) => run(cfg, resolve, signal));
}

function run(cfg: PeerConfig, done: (r: AgentResult) => void, signal?: AbortSignal): void {
  const log = makeLogger(cfg.role);
  const peerRole = otherRole(cfg.role);
  const rdv = cfg.rendezvous;
  const rdvText = formatEndpoint(rdv);
  const startedAt = performance.now();
  const sock = dgram.createSocket({ type: 'udp4' });

  let phase: Phase = 'registering';
  let bound = false;
  let seq = 0;
  /** the peer's endpoint as the rendezvous observed it */
  let peerEp: Endpoint | null = null;
  /** where pings go: peerEp, or the peer-reflexive source of the peer's pings once seen */
  let target: Endpoint | null = null;
  /** last authenticated source of the peer's pings */
  let reflexive: Endpoint | null = null;
  /** performance.now() when the rendezvous `peer` message arrived */
  let learnedAt = 0;

  const stats = {
    regsSent: 0,
    peerMsgs: 0,
    pingsSent: 0,
    pingsRecv: 0,
    pongsSent: 0,
    pongsRecv: 0,
    closesRecv: 0,
    dropped: 0,
    sendErrors: 0,
  };
  let lastDrop = '';

  let regTimer: NodeJS.Timeout | undefined;
  let waitTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let windowTimer: NodeJS.Timeout | undefined;

  // every timer of the try, so that finish() leaves none behind (a serving process runs the next try)
  const { later, every, clearAll: clearTimers } = tryTimers();

  const send = (t: MessageType, to: Endpoint, onSent?: () => void): void => {
    if (phase === 'finished') return;
    const msg: Message = { t, s: cfg.session, r: cfg.role, ts: Date.now(), n: ++seq };
    sock.send(sign(msg, cfg.secret), to.port, to.address, (err) => {
      if (err) {
        stats.sendErrors++;
        if (stats.sendErrors <= 5 || stats.sendErrors % 50 === 0) {
          log(`send ${t} #${msg.n} to ${formatEndpoint(to)} failed: ${err.message} (send errors so far: ${stats.sendErrors})`);
        }
      }
      onSent?.();
    });
  };

  const finish = (result: AgentResult): void => {
    if (phase === 'finished') return;
    phase = 'finished';
    clearTimers();
    signal?.removeEventListener('abort', onAbort);
    log(
      `exit ${result.code}: regs sent ${stats.regsSent}, peer msgs ${stats.peerMsgs}, pings sent ${stats.pingsSent}/recv ${stats.pingsRecv}, ` +
        `pongs sent ${stats.pongsSent}/recv ${stats.pongsRecv}, closes recv ${stats.closesRecv}, dropped ${stats.dropped}, send errors ${stats.sendErrors}`,
    );
    try {
      sock.close();
    } catch {
      // already closed
    }
    done(result);
  };

  /** a clean failure, or (with `code`) a fault */
  const fail = (reason: string, code?: number): void => {
    log(`FAILED: ${reason}`);
    finish(code === undefined ? failed(reason) : fault(reason, code));
  };

  // --- registering -----------------------------------------------------------------------------

  const sendReg = (): void => {
    stats.regsSent++;
    if (stats.regsSent === 1 || stats.regsSent % 20 === 0) log(`sending reg #${stats.regsSent} to rendezvous ${rdvText}`);
    send('reg', rdv);
  };

  const onWaitExpired = (): void => {
    if (phase !== 'registering') return;
    const drops = stats.dropped > 0 ? `, dropped ${stats.dropped} datagrams (last: ${lastDrop})` : '';
    fail(
      `not paired by rendezvous ${rdvText} within ${cfg.waitMs} ms ` +
        `(sent ${stats.regsSent} registrations, received 0 peer messages${drops})`,
    );
  };

  // --- punching --------------------------------------------------------------------------------

  const sendPing = (): void => {
    if (phase !== 'punching' || target === null) return;
    stats.pingsSent++;
    if (stats.pingsSent === 1 || stats.pingsSent % 10 === 0) log(`sending ping #${stats.pingsSent} to ${formatEndpoint(target)}`);
    send('ping', target);
  };

  const onWindowExpired = (): void => {
    if (phase !== 'punching' || peerEp === null) return;
    const extra =
      reflexive !== null && !sameEndpoint(reflexive, peerEp) ? `; last ping source ${formatEndpoint(reflexive)}` : '';
    fail(
      `no pong within ${cfg.timeoutMs} ms of learning peer ${formatEndpoint(peerEp)} ` +
        `(sent ${stats.pingsSent} pings, received 0 pongs and ${stats.pingsRecv} pings, answered ${stats.pongsSent}${extra})`,
    );
  };

  const onPeerMessage = (ep: Endpoint): void => {
    stats.peerMsgs++;
    if (phase === 'registering') {
      learnedAt = performance.now();
      peerEp = ep;
      phase = 'punching';
      clearInterval(regTimer);
      clearTimeout(waitTimer);
      target = reflexive ?? ep;
      log(
        `paired after ${round1(learnedAt - startedAt)} ms: peer ${peerRole} is at ${formatEndpoint(ep)}` +
          (reflexive ? ` (already saw its pings from ${formatEndpoint(reflexive)}; aiming there)` : '') +
          `; punching for up to ${cfg.timeoutMs} ms`,
      );
      windowTimer = later(onWindowExpired, cfg.timeoutMs);
      pingTimer = every(sendPing, PING_INTERVAL_MS);
      sendPing();
      return;
    }
    if (phase === 'punching' && !sameEndpoint(ep, peerEp)) {
      log(`rendezvous now reports peer at ${formatEndpoint(ep)} (was ${peerEp ? formatEndpoint(peerEp) : '-'})`);
      peerEp = ep;
      if (reflexive === null) target = ep;
    }
  };

  const confirm = (src: Endpoint, via: 'pong' | 'close'): void => {
    phase = 'closing';
    clearInterval(pingTimer);
    clearTimeout(windowTimer);
    const ms = round1(performance.now() - learnedAt);
    const peerText = formatEndpoint(src);
    log(`direct path confirmed by ${via} from ${peerText} after ${ms} ms; sending ${CLOSE_COUNT} closes`);
    let sent = 0;
    const sendClose = (): void => {
      if (phase !== 'closing') return;
      sent++;
      const last = sent >= CLOSE_COUNT;
      const done = () => (cfg.holdMs > 0 ? hold(src, ms) : finish(connected({ path: 'direct-udp', peer: peerText, timeToDirectMs: ms })));
      send('close', src, last ? done : undefined);
      if (!last) later(sendClose, CLOSE_INTERVAL_MS);
    };
    sendClose();
  };

  // --- holding (NMX_HOLD_MS): does the path outlive an idle spell? ----------------------------------
  // Both keep the path (with keepalives every NMX_KEEPALIVE_MS, or none), then only `a` sends: if `b`'s
  // NAT forgot the binding meanwhile, a's probe is dropped there and the path is dead — re-punching from
  // both sides would hide exactly what is being measured.
  let peerOk: (() => void) | null = null;
  const hold = (peer: Endpoint, ttd: number): void => {
    phase = 'holding';
    const peerText = formatEndpoint(peer);
    const ok = () => finish(connected({ path: 'direct-udp', peer: peerText, timeToDirectMs: ttd, heldMs: cfg.holdMs }));
    log(`holding the path ${cfg.holdMs} ms, ${cfg.keepaliveMs > 0 ? `keepalive every ${cfg.keepaliveMs} ms` : 'no keepalives'}`);
    const keepalive = cfg.keepaliveMs > 0 ? every(() => send('ping', peer), cfg.keepaliveMs) : null;
    later(() => {
      if (keepalive) clearInterval(keepalive);
      phase = 'rechecking';
      const slack = cfg.role === 'a' ? 0 : 300;
      const deadline = later(() => {
        if (phase === 'rechecking') fail(`the path died: ${cfg.role === 'a' ? 'no pong' : `no probe from ${peerRole}`} within ${cfg.timeoutMs + slack} ms after holding it idle for ${cfg.holdMs} ms`);
      }, cfg.timeoutMs + slack);
      if (cfg.role === 'a') {
        log('probing the held path');
        const probe = every(() => send('ping', peer), PING_INTERVAL_MS);
        send('ping', peer);
        peerOk = () => {
          clearInterval(probe);
          clearTimeout(deadline);
          log('the held path still works');
          ok();
        };
      } else {
        // b answers probes (the ping handler does) and is done once one arrived and was answered
        peerOk = () => {
          clearTimeout(deadline);
          log('a probe arrived over the held path');
          later(ok, 50);
        };
      }
      // b confirmed a little after a (on a's first close): it starts listening for probes a little
      // before a sends them, so a probe never lands while b is still holding
    }, cfg.role === 'a' ? cfg.holdMs : Math.max(0, cfg.holdMs - 100));
  };

  // --- receiving -------------------------------------------------------------------------------

  const drop = (src: Endpoint, size: number, reason: string): void => {
    stats.dropped++;
    lastDrop = `${reason} from ${formatEndpoint(src)}`;
    log(`drop ${size} B from ${formatEndpoint(src)}: ${reason}`);
  };

  const replay = new ReplayGuard();
  sock.on('message', (buf, rinfo) => {
    if (phase === 'finished') return;
    const src: Endpoint = { address: rinfo.address, port: rinfo.port };
    const res = verify(buf, cfg.secret, { session: cfg.session, self: cfg.role, replay });
    if (!res.ok) {
      drop(src, buf.length, res.reason);
      return;
    }
    const m = res.msg;
    const srcText = formatEndpoint(src);
    switch (m.t) {
      case 'peer': {
        if (m.r !== 'rdv' || !sameEndpoint(src, rdv)) {
          drop(src, buf.length, `peer message not from the rendezvous (r=${m.r})`);
          return;
        }
        const ep = parseEndpoint(m.ep ?? '');
        if (phase === 'registering' || stats.peerMsgs < 5) log(`rendezvous #${m.n}: peer ${peerRole} at ${m.ep}`);
        onPeerMessage(ep);
        return;
      }
      case 'ping': {
        if (m.r !== peerRole) {
          drop(src, buf.length, `ping from role ${m.r}`);
          return;
        }
        stats.pingsRecv++;
        if (phase === 'registering') {
          // Not answered until the rendezvous pairs us (keeps timeToDirectMs meaningful);
          // the source is remembered as the peer-reflexive target for when punching starts.
          if (!sameEndpoint(reflexive, src)) log(`ping #${m.n} from ${srcText} before pairing; will aim there once paired`);
          reflexive = src;
          return;
        }
        if (!sameEndpoint(reflexive, src) || stats.pingsRecv <= 3) log(`ping #${m.n} from ${srcText}; answering pong`);
        send('pong', src);
        stats.pongsSent++;
        if (phase === 'punching' && !sameEndpoint(target, src)) {
          log(`peer-reflexive: aiming pings at observed source ${srcText} (was ${target ? formatEndpoint(target) : '-'})`);
          target = src;
        }
        reflexive = src;
        if (phase === 'rechecking' && cfg.role === 'b') peerOk?.();
        return;
      }
      case 'pong':
      case 'close': {
        if (m.r !== peerRole) {
          drop(src, buf.length, `${m.t} from role ${m.r}`);
          return;
        }
        if (m.t === 'pong') stats.pongsRecv++;
        else stats.closesRecv++;
        log(`${m.t} #${m.n} from ${srcText}`);
        if (phase === 'punching') confirm(src, m.t);
        else if (phase === 'rechecking' && cfg.role === 'a' && m.t === 'pong') peerOk?.();
        return;
      }
      case 'reg':
        drop(src, buf.length, `unexpected reg from role ${m.r}`);
        return;
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

  // the harness ended the try early
  const onAbort = (): void => fail('stopped by the harness');
  if (signal?.aborted) return fail('stopped by the harness');
  signal?.addEventListener('abort', onAbort, { once: true });
  waitTimer = later(onWaitExpired, cfg.waitMs);
  sock.bind({ port: cfg.localPort, address: '0.0.0.0', exclusive: true }, () => {
    bound = true;
    if (phase !== 'registering') return;
    const a = sock.address();
    log(`bound ${a.address}:${a.port}; session ${JSON.stringify(cfg.session)}; registering with ${rdvText} every ${REG_INTERVAL_MS} ms`);
    regTimer = every(sendReg, REG_INTERVAL_MS);
    sendReg();
  });
}
