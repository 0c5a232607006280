// TCP simultaneous open (RFC 5382, seed 003) as a natmatrix peer agent. From one local port it learns
// its TCP mapping at the rendezvous, then connects to the peer's advertised endpoint again and again
// (each try abandoned after 250 ms) while the peer does the same towards it. When both NATs have a
// conntrack entry for the pair, the crossing SYNs meet and the kernels complete a simultaneous open.
// Both sides then exchange a signed hello (ping/pong) to prove they reached the genuine peer.
//
// Unlike UDP there is no peer-reflexive rescue: a SYN arriving from an unexpected port finds no socket
// (a listener on the punching port would need SO_REUSEPORT beside the connecting socket), so both
// mappings must be endpoint-independent.
//
// Contract as agents/udp-punch/peer.ts; verdict path "direct-tcp".
import net from 'node:net';
import {
  configOrExit,
  type Endpoint,
  formatEndpoint,
  makeLogger,
  otherRole,
  parseEndpoint,
  readPeerConfig,
  ReplayGuard,
  round1,
  sign,
  verify,
} from '../udp-punch/protocol.ts';

const TRY_MS = 250;
const RETRY_GAP_MS = 20;

function main(): void {
  const cfg = configOrExit(readPeerConfig, 'peer');
  const log = makeLogger(cfg.role);
  const peerRole = otherRole(cfg.role);
  const replay = new ReplayGuard();
  let seq = 0;
  const line = (t: 'reg' | 'ping' | 'pong') => sign({ t, s: cfg.session, r: cfg.role, ts: Date.now(), n: ++seq }, cfg.secret).toString() + '\n';
  const finish = (ok: boolean, fields: Record<string, unknown>, code: number): never => {
    process.stdout.write(JSON.stringify({ ok, path: ok ? 'direct-tcp' : null, peer: null, ...fields }) + '\n');
    process.exit(code);
  };
  const started = performance.now();
  const waitTimer = setTimeout(() => finish(false, { reason: `the rendezvous did not pair us within ${cfg.waitMs} ms` }, 1), cfg.waitMs);

  // 1. learn the peer's TCP endpoint from the rendezvous, from our punching port
  const rdv = net.connect({ host: cfg.rendezvous.address, port: cfg.rendezvous.port, localPort: cfg.localPort, localAddress: '0.0.0.0' });
  let rdvText = '';
  rdv.on('connect', () => rdv.write(line('reg')));
  rdv.on('error', (e) => log(`rendezvous connection: ${e.message}`));
  rdv.on('data', (chunk) => {
    rdvText += chunk.toString('utf8');
    const nl = rdvText.indexOf('\n');
    if (nl < 0) return;
    const res = verify(Buffer.from(rdvText.slice(0, nl)), cfg.secret, { session: cfg.session, self: cfg.role, replay });
    if (!res.ok || res.msg.t !== 'peer' || res.msg.r !== 'rdv' || !res.msg.ep) {
      log(`drop rendezvous line: ${res.ok ? `unexpected ${res.msg.t}` : res.reason}`);
      return;
    }
    rdv.destroy();
    clearTimeout(waitTimer);
    punch(parseEndpoint(res.msg.ep));
  });

  // 2. connect to the peer from the same port until the crossing SYNs meet
  function punch(peer: Endpoint): void {
    const paired = performance.now();
    log(`paired after ${round1(paired - started)} ms: peer ${peerRole} at ${formatEndpoint(peer)}; connecting for up to ${cfg.timeoutMs} ms`);
    let attempts = 0;
    const errors = new Map<string, number>();
    const window = setTimeout(() => {
      const errs = [...errors].map(([k, v]) => `${k} ×${v}`).join(', ') || 'none';
      finish(false, { reason: `no TCP connection to ${formatEndpoint(peer)} within ${cfg.timeoutMs} ms (${attempts} connects; errors: ${errs})` }, 1);
    }, cfg.timeoutMs);
    const attempt = () => {
      attempts++;
      const sock = net.connect({ host: peer.address, port: peer.port, localPort: cfg.localPort, localAddress: '0.0.0.0' });
      const giveUp = setTimeout(() => sock.destroy(), TRY_MS);
      let text = '';
      let connected = false;
      sock.on('connect', () => {
        connected = true;
        clearTimeout(giveUp);
        log(`connected to ${formatEndpoint(peer)} on connect #${attempts}; sending hello`);
        sock.write(line('ping'));
      });
      sock.on('data', (chunk) => {
        text += chunk.toString('utf8');
        for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
          const res = verify(Buffer.from(text.slice(0, nl)), cfg.secret, { session: cfg.session, self: cfg.role, replay });
          text = text.slice(nl + 1);
          if (!res.ok) {
            log(`drop line: ${res.reason}`);
            continue;
          }
          if (res.msg.t === 'ping') sock.write(line('pong'));
          if (res.msg.t === 'ping' || res.msg.t === 'pong') {
            const ttd = round1(performance.now() - paired);
            log(`direct TCP path to ${formatEndpoint(peer)} confirmed by ${res.msg.t} after ${ttd} ms`);
            clearTimeout(window);
            // let our pong leave before exiting
            sock.end(() => finish(true, { peer: formatEndpoint(peer), timeToDirectMs: ttd }, 0));
            setTimeout(() => finish(true, { peer: formatEndpoint(peer), timeToDirectMs: ttd }, 0), 50);
            return;
          }
        }
      });
      sock.on('error', (e: NodeJS.ErrnoException) => errors.set(e.code ?? e.message, (errors.get(e.code ?? e.message) ?? 0) + 1));
      sock.on('close', () => {
        clearTimeout(giveUp);
        if (!connected) setTimeout(attempt, RETRY_GAP_MS);
      });
    };
    attempt();
  }

  process.on('SIGTERM', () => process.exit(143));
  process.on('SIGINT', () => process.exit(130));
}

main();
