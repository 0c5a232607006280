// Fallback peer: the strategy "UDP punch, then TCP simultaneous open, then a relay" (seeds 002, 003,
// 004) as one natmatrix agent. Each step runs only when the one before failed cleanly:
//
//   1. direct-udp  agents/udp-punch (signed rendezvous over UDP, peer-reflexive punching); its pairing
//                  wait is cut to 1.5 s, so a network that drops UDP costs little
//   2. direct-tcp  agents/tcp-punch (TCP simultaneous open), session "<session>/tcp"
//   3. relayed     the TLS relay (agents/relay, tx_tlsrelay protocol) at NMX_RELAY: b opens a relay
//                  listener and announces it through the TCP rendezvous (session "<session>/relay",
//                  a reg that declares its endpoint); a dials it. Both ends are outbound TCP, so this
//                  gets through any NAT that lets TCP out.
//
// Every path ends with the same proof: a signed ping answered by a signed pong from the genuine peer
// (the relay sees the bytes, but cannot forge the peer). The two peers move through the steps in
// lockstep: a step ends for both at its punch window (or pairing wait), and the next pairs them again.
//
// Environment: the peer contract (README) plus NMX_RELAY (ip:port of the relay's TLS control port),
// NMX_RELAY_CA (PEM file of the relay's certificate) and NMX_RELAY_SECRET (the run's relay credential,
// which b's listener proves). Without NMX_RELAY the chain stops after TCP.
// Verdict: the contract's, with "path" the step that won and "steps" what each step did:
//   {"ok":true,"path":"relayed","peer":"203.0.113.10:12101","timeToDirectMs":8.1,
//    "steps":[{"path":"direct-udp","ok":false,"ms":612,"reason":"…"},{"path":"direct-tcp",…},{"path":"relayed","ok":true,"ms":9}]}
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dialRelay, openRelayListener, type RelayListener } from '../relay/client.ts';
import { helloOver, punchTcp, tcpRendezvous } from '../tcp-punch/punch.ts';
import {
  type AgentResult,
  connected,
  type Endpoint,
  envEndpoint,
  EnvError,
  type Env,
  failed,
  formatEndpoint,
  makeLogger,
  type PeerConfig,
  readPeerConfig,
  ReplayGuard,
  round1,
  runPeer,
  type Step,
} from '../sdk/index.ts';
import { punchUdp } from '../udp-punch/punch.ts';

/** Pairing wait of the UDP step: pairing takes milliseconds when UDP gets through at all. */
const UDP_WAIT_MS = 1500;

interface FallbackConfig extends PeerConfig {
  relay: RelayAccess | null;
}

interface RelayAccess {
  address: Endpoint;
  ca: string;
  /** the run's relay credential (NMX_RELAY_SECRET) */
  secret: string;
}

function readConfig(env: Env): FallbackConfig {
  const base = readPeerConfig(env);
  if (!env.NMX_RELAY) return { ...base, relay: null };
  const address = envEndpoint(env, 'NMX_RELAY');
  const caFile = env.NMX_RELAY_CA;
  if (!caFile) throw new EnvError('NMX_RELAY_CA', 'is not set (the PEM file of the relay certificate; NMX_RELAY is set)');
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (e) {
    throw new EnvError('NMX_RELAY_CA', `cannot be read: ${(e as Error).message}`);
  }
  const secret = env.NMX_RELAY_SECRET;
  if (!secret) throw new EnvError('NMX_RELAY_SECRET', 'is not set (the run\'s relay credential; NMX_RELAY is set)');
  return { ...base, relay: { address, ca, secret } };
}

/** The relay step: b listens on the relay, a dials it; both prove the peer with a signed hello. */
function viaRelay(cfg: FallbackConfig, relay: RelayAccess, signal: AbortSignal): Promise<AgentResult> {
  const log = makeLogger(cfg.role);
  const session = `${cfg.session}/relay`;
  const replay = new ReplayGuard();
  const started = performance.now();
  return new Promise((resolve) => {
    let finished = false;
    let listener: RelayListener | null = null;
    let dialled: Socket | null = null;
    const accepted = new Set<Socket>();
    let answered: NodeJS.Timeout | undefined;
    let publicText = '';
    let window: NodeJS.Timeout | undefined;
    const onAbort = () => fail('stopped by the harness');
    const finish = (r: AgentResult) => {
      if (finished) return;
      finished = true;
      clearTimeout(window);
      signal.removeEventListener('abort', onAbort);
      clearTimeout(answered);
      dialled?.destroy();
      for (const sock of accepted) sock.destroy();
      // the try is over once the relay has let go of the listener (nothing of it outlives the try)
      void (listener?.close() ?? Promise.resolve()).then(() => resolve(r));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const fail = (reason: string) => finish(failed(reason));
    const proven = (peer: string) => (via: 'ping' | 'pong') => {
      const ms = round1(performance.now() - started);
      log(`relayed path through ${peer} confirmed by ${via} after ${ms} ms`);
      finish(connected({ path: 'relayed', peer, timeToDirectMs: ms }));
    };
    const arm = () => {
      window = setTimeout(() => fail(`no signed hello over the relay ${formatEndpoint(relay.address)} within ${cfg.timeoutMs} ms of pairing`), cfg.timeoutMs);
    };
    if (cfg.role === 'b') {
      openRelayListener({
        relay: relay.address,
        ca: relay.ca,
        secret: relay.secret,
        log,
        onConnection: (sock) => {
          if (finished) return void sock.destroy();
          accepted.add(sock);
          sock.on('error', (e) => log(`relayed connection: ${e.message}`));
          // answer with pong, give it a moment to leave, then finish
          helloOver(sock, cfg, session, replay, (via) => (answered = setTimeout(() => (sock.end(), proven(publicText)(via)), 20)));
        },
      }).then(
        (l) => {
          listener = l;
          if (finished) return void l.close();
          publicText = formatEndpoint(l.publicListener);
          log(`relay listener ${publicText}; announcing it to a`);
          return tcpRendezvous(cfg, { session, declare: l.publicListener, signal }, replay).then(arm);
        },
      ).catch((e: Error) => fail(`relay step: ${e.message}`));
    } else {
      tcpRendezvous(cfg, { session, signal }, replay)
        .then((ep) => {
          arm();
          log(`b listens on the relay at ${formatEndpoint(ep)}; dialling`);
          return dialRelay(ep, relay.ca).then((sock) => {
            dialled = sock;
            if (finished) return void sock.destroy();
            sock.on('error', (e) => log(`relayed connection: ${e.message}`));
            helloOver(sock, cfg, session, replay, (via) => (sock.end(), proven(formatEndpoint(ep))(via)));
          });
        })
        .catch((e: Error) => fail(`relay step: ${e.message}`));
    }
  });
}

/** The strategy, step by step: each runs only when the one before failed cleanly. */
async function fallback(cfg: FallbackConfig, signal: AbortSignal): Promise<AgentResult> {
  const log = makeLogger(cfg.role);
  const chain: Array<[string, () => Promise<AgentResult>]> = [
    ['direct-udp', () => punchUdp({ ...cfg, waitMs: Math.min(cfg.waitMs, UDP_WAIT_MS) }, signal)],
    ['direct-tcp', () => punchTcp(cfg, `${cfg.session}/tcp`, signal)],
    ...(cfg.relay ? [['relayed', () => viaRelay(cfg, cfg.relay!, signal)] as [string, () => Promise<AgentResult>]] : []),
  ];
  const steps: Step[] = [];
  let last: AgentResult | null = null;
  for (const [i, [path, step]] of chain.entries()) {
    log(`step ${i + 1}/${chain.length}: ${path}`);
    const t0 = performance.now();
    last = await step();
    const ok = last.code === 0;
    steps.push({ path, ok, ms: round1(performance.now() - t0), ...(ok ? {} : { reason: last.verdict.reason ?? null }) });
    // a success ends the chain; so does a fault (exit code other than 0/1): the harness must see it
    if (last.code !== 1 || signal.aborted) break;
    log(`${path} failed: ${String(last.verdict.reason)}`);
  }
  const reasons = steps.map((s) => `${String(s.path)}: ${String(s.reason)}`).join('; ');
  const verdict = last!.code === 1 ? { ...last!.verdict, reason: `every step failed — ${reasons}` } : last!.verdict;
  return { verdict: { ...verdict, steps }, code: last!.code };
}

runPeer(readConfig, fallback);
