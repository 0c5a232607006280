// TCP rendezvous (library; the entry point is rendezvous.ts, and agents/fallback serves it beside the
// UDP rendezvous): each peer connects from its punching port and sends one signed `reg` line; the
// rendezvous records the endpoint the connection comes from (the NAT's TCP mapping) — or the endpoint
// the reg declares (`ep`, e.g. a relay listener) — and, once both peers of a session are connected,
// sends each a signed `peer` line with the other's endpoint and closes both connections (the rendezvous
// closes first, so the TIME_WAIT is here, not on the peers' punching port).
import net from 'node:net';
import { type Endpoint, formatEndpoint, parseEndpoint, type RendezvousConfig, ReplayGuard, sign, stamp, verify, type Role } from '../sdk/index.ts';

const log = (session: string | null, line: string) => process.stderr.write(`${stamp()} [${session ?? '-'}] ${line}\n`);

export interface RunningServer {
  listen: string;
  close: () => Promise<void>;
}

/** Serve the TCP rendezvous on cfg.listen; resolves once bound, rejects if it cannot bind. */
export function startTcpRendezvous(cfg: RendezvousConfig): Promise<RunningServer> {
  const { secret, listen } = cfg;
  const sessions = new Map<string, Partial<Record<Role, { sock: net.Socket; ep: Endpoint }>>>();
  const replay = new ReplayGuard();
  let seq = 0;

  const server = net.createServer((sock) => {
    const src: Endpoint = { address: sock.remoteAddress?.replace(/^::ffff:/, '') ?? '?', port: sock.remotePort ?? 0 };
    let buffered = '';
    sock.setTimeout(30_000, () => sock.destroy());
    sock.on('error', () => {});
    sock.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      if (buffered.length > 4096) return sock.destroy();
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      const res = verify(Buffer.from(buffered.slice(0, nl)), secret, { self: 'rdv', replay });
      if (!res.ok || res.msg.t !== 'reg') {
        log(null, `reject connection from ${formatEndpoint(src)}: ${res.ok ? `unexpected ${res.msg.t}` : res.reason}`);
        return sock.destroy();
      }
      const m = res.msg;
      const role = m.r as Role;
      const sess = sessions.get(m.s) ?? {};
      sessions.set(m.s, sess);
      const ep = m.ep ? parseEndpoint(m.ep) : src;
      sess[role] = { sock, ep };
      log(m.s, `accept tcp reg from ${role} at ${formatEndpoint(src)}${m.ep ? `, declaring ${m.ep}` : ''}`);
      const [a, b] = [sess.a, sess.b];
      if (!a || !b) return;
      for (const [to, other, r] of [[a, b, 'b'], [b, a, 'a']] as const) {
        to.sock.end(sign({ t: 'peer', s: m.s, r: 'rdv', ts: Date.now(), n: ++seq, ep: formatEndpoint(other.ep) }, secret).toString() + '\n');
        log(m.s, `introduce: ${r} is at ${formatEndpoint(other.ep)}`);
      }
      sessions.delete(m.s);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`cannot listen on tcp ${formatEndpoint(listen)}: ${e.message}`)));
    server.listen(listen.port, listen.address, () => {
      log(null, `listening on tcp ${formatEndpoint(listen)}`);
      resolve({ listen: formatEndpoint(listen), close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}
