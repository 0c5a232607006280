// RFC 5780-style behaviour-discovery server (for `npm run classify`): four UDP sockets on two public
// addresses × two ports. A request {"id","change"} is answered with the source address it was seen
// from ("mapped"), sent from the same socket, from the other port, or from the other address and port,
// as asked — which is what lets a client behind a NAT tell its mapping and filtering behaviour apart.
//
// env: NMX_PROBE_ADDRS "ip1,ip2", NMX_PROBE_PORTS "p1,p2". stdout: {"ready":true} once all four are bound.
import dgram from 'node:dgram';
import { makeLogger } from '../sdk/index.ts';

type Change = 'none' | 'port' | 'ip+port';

function fail(msg: string): never {
  process.stderr.write(`probe server: ${msg}\n`);
  process.exit(2);
}

const addrs = (process.env.NMX_PROBE_ADDRS ?? '').split(',').filter(Boolean);
const ports = (process.env.NMX_PROBE_PORTS ?? '').split(',').map(Number).filter((p) => Number.isInteger(p) && p > 0);
if (addrs.length !== 2 || ports.length !== 2) fail('NMX_PROBE_ADDRS needs two addresses and NMX_PROBE_PORTS two ports');

const sockets = new Map<string, dgram.Socket>();
const key = (ip: string, port: number) => `${ip}:${port}`;
const log = makeLogger('probe');

function reply(via: dgram.Socket, to: dgram.RemoteInfo, body: object) {
  via.send(JSON.stringify(body), to.port, to.address);
}

let bound = 0;
for (const ip of addrs) {
  for (const port of ports) {
    const sock = dgram.createSocket('udp4');
    sockets.set(key(ip, port), sock);
    sock.on('message', (buf, rinfo) => {
      let req: { id?: unknown; change?: unknown };
      try {
        req = JSON.parse(buf.toString('utf8')) as typeof req;
      } catch {
        return log(`drop non-JSON from ${rinfo.address}:${rinfo.port}`);
      }
      const change: Change = req.change === 'port' || req.change === 'ip+port' ? req.change : 'none';
      const [ip2, port2] = [addrs.find((a) => a !== ip)!, ports.find((p) => p !== port)!];
      const from = change === 'none' ? key(ip, port) : change === 'port' ? key(ip, port2) : key(ip2, port2);
      const mapped = `${rinfo.address}:${rinfo.port}`;
      log(`request ${String(req.id)} to ${key(ip, port)} seen from ${mapped}; answering from ${from} (change ${change})`);
      reply(sockets.get(from)!, rinfo, { id: req.id, mapped, to: key(ip, port), from });
    });
    sock.on('error', (e) => fail(`socket ${key(ip, port)}: ${e.message}`));
    sock.bind(port, ip, () => {
      if (++bound === 4) process.stdout.write(JSON.stringify({ ready: true, listen: [...sockets.keys()] }) + '\n');
    });
  }
}

const stop = () => {
  for (const s of sockets.values()) s.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
