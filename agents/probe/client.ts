// RFC 5780-style behaviour-discovery client (for `npm run classify`), run behind a router. One phase
// per process, because each phase needs fresh NAT state (the harness resets the router in between):
//
//   mapping:   from one socket, ask (ip1,p1), (ip2,p1), (ip2,p2) for the mapped address.
//              same mapped address for ip2 as for ip1 → endpoint-independent; same for (ip2,p1) and
//              (ip2,p2) but different from ip1 → address-dependent; else address-and-port-dependent.
//   filtering: having talked to (ip1,p1) only, ask for an answer from (ip2,p2): it arrives → endpoint-
//              independent; else ask for one from (ip1,p2): arrives → address-dependent; else
//              address-and-port-dependent.
//   hairpin:   learn the mapped address of one socket, then send to it from a second socket (the next
//              port up): it arrives → the NAT hairpins (RFC 5780 section 4.5).
//
// env: NMX_PROBE_PHASE, NMX_PROBE_ADDRS "ip1,ip2", NMX_PROBE_PORTS "p1,p2", NMX_LOCAL_PORT.
// stdout: one JSON line with the phase's findings; exit 0, or 1 when the server never answered.
import dgram from 'node:dgram';
import { makeLogger } from '../sdk/index.ts';

const WAIT_MS = 250;
const TRIES = 3;

const phase = process.env.NMX_PROBE_PHASE;
const [ip1, ip2] = (process.env.NMX_PROBE_ADDRS ?? '').split(',');
const [p1, p2] = (process.env.NMX_PROBE_PORTS ?? '').split(',').map(Number);
const localPort = Number(process.env.NMX_LOCAL_PORT ?? 0);
if ((phase !== 'mapping' && phase !== 'filtering' && phase !== 'hairpin') || !ip1 || !ip2 || !p1 || !p2) {
  process.stderr.write('probe client: needs NMX_PROBE_PHASE (mapping|filtering|hairpin), NMX_PROBE_ADDRS, NMX_PROBE_PORTS\n');
  process.exit(2);
}
const log = makeLogger(`probe ${phase}`);

const sock = dgram.createSocket('udp4');
let nextId = 0;
const waiting = new Map<number, (r: { mapped: string; from: string }) => void>();
sock.on('message', (buf, rinfo) => {
  try {
    const r = JSON.parse(buf.toString('utf8')) as { id: number; mapped: string; from: string };
    log(`answer ${r.id} from ${rinfo.address}:${rinfo.port}: mapped ${r.mapped}`);
    waiting.get(r.id)?.(r);
  } catch {
    log(`non-JSON from ${rinfo.address}:${rinfo.port}`);
  }
});

/** Ask (ip, port) for our mapped address; null when no answer came (each try waits WAIT_MS). */
async function ask(ip: string, port: number, change: 'none' | 'port' | 'ip+port', tries = TRIES): Promise<{ mapped: string; from: string } | null> {
  for (let i = 0; i < tries; i++) {
    const id = ++nextId;
    const answer = new Promise<{ mapped: string; from: string } | null>((resolve) => {
      waiting.set(id, resolve);
      setTimeout(() => resolve(null), WAIT_MS);
    });
    sock.send(JSON.stringify({ id, change }), port, ip);
    log(`request ${id} to ${ip}:${port} (change ${change})`);
    const r = await answer;
    waiting.delete(id);
    if (r) return r;
  }
  return null;
}

function done(result: object, code: number): never {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

sock.bind(localPort, '0.0.0.0', async () => {
  const m1 = await ask(ip1, p1, 'none');
  if (!m1) done({ phase, ok: false, reason: `no answer from ${ip1}:${p1}` }, 1);
  const port = Number(m1.mapped.split(':')[1]);
  if (phase === 'mapping') {
    const m2 = await ask(ip2, p1, 'none');
    const m3 = await ask(ip2, p2, 'none');
    if (!m2 || !m3) done({ phase, ok: false, reason: 'no answer from the second address' }, 1);
    const mapping = m2.mapped === m1.mapped ? 'endpoint-independent' : m3.mapped === m2.mapped ? 'address-dependent' : 'address-and-port-dependent';
    done({ phase, ok: true, mapping, mapped: [m1.mapped, m2.mapped, m3.mapped], portPreserved: port === sock.address().port }, 0);
  }
  if (phase === 'hairpin') {
    const second = dgram.createSocket('udp4');
    const [mappedIp, mappedPort] = [m1.mapped.split(':')[0]!, Number(m1.mapped.split(':')[1])];
    const arrived = new Promise<boolean>((resolve) => {
      sock.on('message', (buf) => {
        if (buf.toString('utf8') === 'hairpin-probe') resolve(true);
      });
      setTimeout(() => resolve(false), WAIT_MS * TRIES);
    });
    second.bind(localPort + 1, '0.0.0.0', () => {
      for (let i = 0; i < TRIES; i++) setTimeout(() => second.send('hairpin-probe', mappedPort, mappedIp), i * 50);
    });
    const hairpin = await arrived;
    log(`hairpin probe to our own mapped address ${m1.mapped}: ${hairpin ? 'arrived' : 'lost'}`);
    done({ phase, ok: true, hairpin, mapped: [m1.mapped] }, 0);
  }
  // filtering: a single try each — a filtered answer never arrives, retries would only wait longer
  const other = await ask(ip1, p1, 'ip+port', 1);
  const filtering = other ? 'endpoint-independent' : (await ask(ip1, p1, 'port', 1)) ? 'address-dependent' : 'address-and-port-dependent';
  done({ phase, ok: true, filtering, mapped: [m1.mapped] }, 0);
});
