// TCP/TLS relay speaking the tx_tlsrelay line protocol, for peers that cannot reach each other directly.
//
// At start the relay binds its TLS control port (NMX_LISTEN) and a pool of listening ports
// (NMX_RELAY_PORTS "FIRST-LAST", an even count): pair i is (FIRST+2i, FIRST+2i+1) = (public port,
// reverse port). Every socket on every port is TLS with the relay's certificate; lines end in "\r\n".
//
//   server → control port      the relay assigns a free pair and sends
//                                 public_listener HOST:PUBLIC      (where clients connect)
//                                 reverse_listener HOST:REVERSE    (where the server connects back)
//                              or, with every pair taken, `no_available_listeners` and closes.
//   client → public port       queued (paused: its bytes wait in the relay, nothing is lost) and the
//                              relay sends `new_connection` on the server's control connection.
//   server → reverse port      paired with the oldest queued client of that pair; from then on the
//                              relay pipes bytes both ways until either side ends (the other is ended)
//                              or fails (the other is destroyed).
//
// A client queued longer than 10 s is dropped; a connection to an unassigned public port, or a reverse
// connection with no client waiting, is dropped before any TLS work. When a control connection closes
// its pair is released (queued clients dropped; sessions already spliced carry on). Lines the server
// sends on the control connection are logged and ignored (at most 4 KiB may be buffered).
//
// stdout: exactly one line once every port is bound, {"ready":true,"listen":"ip:port","pairs":N}.
// stderr: one ISO-stamped line per event. Exit codes: 0 on SIGTERM/SIGINT, 1 when a port cannot be
// bound, 2 for a bad environment. Only node built-ins are imported: the agent is bundled by esbuild.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import {
  configOrExit,
  type Endpoint,
  type Env,
  EnvError,
  envEndpoint,
  envString,
  formatEndpoint,
  isIPv4Address,
  makeLogger,
  quote,
} from '../udp-punch/protocol.ts';

/** A queued client not paired with a reverse connection within this long is dropped. */
const QUEUE_MS = 10_000;
/** TLS handshakes not finished within this long are dropped. */
const HANDSHAKE_MS = 10_000;
/** Control input buffered without a line end; more and the control connection is dropped. */
const MAX_CONTROL_BUFFER = 4096;
/** Clients waiting on one pair at once; more are dropped (a flood cannot exhaust the relay's memory). */
const MAX_QUEUED = 64;
/** Ports in the pool at most (each is a listening socket, i.e. a file descriptor). */
const MAX_POOL_PORTS = 4096;
/** After one side of a session closes, the other gets this long to flush and close before it is destroyed. */
const LINGER_MS = 5_000;

const log = makeLogger('relay');

// ---------------------------------------------------------------------------------------------
// Environment

export interface RelayConfig {
  listen: Endpoint;
  cert: Buffer;
  key: Buffer;
  firstPort: number;
  lastPort: number;
  /** IPv4 address advertised in the listener lines */
  host: string;
}

function readPem(env: Env, name: string): Buffer {
  const path = envString(env, name);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new EnvError(name, `names ${quote(path)}, which cannot be read: ${(err as Error).message}`);
  }
}

export function readRelayConfig(env: Env): RelayConfig {
  const listen = envEndpoint(env, 'NMX_LISTEN', { allowPortZero: true });
  const cert = readPem(env, 'NMX_RELAY_CERT');
  const key = readPem(env, 'NMX_RELAY_KEY');
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new EnvError('NMX_RELAY_CERT', `and NMX_RELAY_KEY are not a usable TLS certificate and key: ${(err as Error).message}`);
  }

  const ports = envString(env, 'NMX_RELAY_PORTS');
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(ports);
  if (!m) throw new EnvError('NMX_RELAY_PORTS', `is ${quote(ports)}, expected FIRST-LAST (e.g. 40000-40009)`);
  const firstPort = Number(m[1]);
  const lastPort = Number(m[2]);
  if (firstPort < 1 || lastPort > 65535 || lastPort < firstPort) {
    throw new EnvError('NMX_RELAY_PORTS', `is ${ports}: expected 1 <= FIRST <= LAST <= 65535`);
  }
  const count = lastPort - firstPort + 1;
  if (count % 2 !== 0) throw new EnvError('NMX_RELAY_PORTS', `is ${ports}: ${count} ports, the count must be even (a public and a reverse port per pair)`);
  if (count > MAX_POOL_PORTS) throw new EnvError('NMX_RELAY_PORTS', `is ${ports}: ${count} ports, at most ${MAX_POOL_PORTS}`);
  if (listen.port >= firstPort && listen.port <= lastPort) {
    throw new EnvError('NMX_RELAY_PORTS', `is ${ports}, which contains the control port of NMX_LISTEN (${listen.port})`);
  }

  const host = envString(env, 'NMX_RELAY_HOST', listen.address);
  if (!isIPv4Address(host)) throw new EnvError('NMX_RELAY_HOST', `is ${quote(host)}, expected an IPv4 address`);
  if (host === '0.0.0.0') {
    throw new EnvError('NMX_RELAY_HOST', 'is 0.0.0.0 (NMX_LISTEN binds every address): set it to the address servers and clients reach the relay at');
  }
  return { listen, cert, key, firstPort, lastPort, host };
}

// ---------------------------------------------------------------------------------------------
// State

interface Queued {
  sock: tls.TLSSocket;
  from: string;
  timer: NodeJS.Timeout;
}

interface Pair {
  index: number;
  publicPort: number;
  reversePort: number;
  /** the server's control connection while the pair is assigned */
  control: tls.TLSSocket | null;
  /** remote endpoint of the control connection, for log lines */
  owner: string;
  queue: Queued[];
}

const remoteOf = (s: net.Socket): string => `${(s.remoteAddress ?? '?').replace(/^::ffff:/, '')}:${s.remotePort ?? 0}`;

function main(): void {
  const cfg = configOrExit(readRelayConfig, 'relay');
  const ctx = tls.createSecureContext({ cert: cfg.cert, key: cfg.key });
  const pairs: Pair[] = [];
  for (let p = cfg.firstPort; p < cfg.lastPort; p += 2) {
    pairs.push({ index: pairs.length, publicPort: p, reversePort: p + 1, control: null, owner: '', queue: [] });
  }
  const sockets = new Set<tls.TLSSocket>();
  let sessionSeq = 0;

  /** Wrap an accepted TCP connection in server-side TLS; `onSecure` runs once the handshake is done. */
  const acceptTls = (raw: net.Socket, what: string, onSecure: (s: tls.TLSSocket, from: string) => void): void => {
    const from = remoteOf(raw);
    raw.on('error', () => {}); // reported through the TLS socket
    const sock = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
    sockets.add(sock);
    let secure = false;
    let reported = false;
    const handshakeFailed = (why: string) => {
      if (secure || reported) return;
      reported = true;
      log(`${what}: TLS handshake from ${from} failed: ${why}`);
    };
    const timer = setTimeout(() => {
      handshakeFailed(`not done within ${HANDSHAKE_MS} ms, dropped`);
      sock.destroy();
    }, HANDSHAKE_MS);
    sock.once('close', () => {
      clearTimeout(timer);
      sockets.delete(sock);
      // e.g. a client that does not trust the certificate aborts with an alert the server never reads
      handshakeFailed('connection closed before the handshake completed');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      handshakeFailed(e.code && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message);
      sock.destroy();
    });
    sock.once('secure', () => {
      clearTimeout(timer);
      secure = true;
      onSecure(sock, from);
    });
  };

  const release = (pair: Pair, why: string): void => {
    if (pair.control === null) return;
    const dropped = pair.queue.splice(0);
    for (const q of dropped) {
      clearTimeout(q.timer);
      q.sock.destroy();
    }
    log(`pair ${pair.index} released (${why}; server ${pair.owner}; ports ${pair.publicPort}/${pair.reversePort}; ${dropped.length} queued client(s) dropped)`);
    pair.control = null;
    pair.owner = '';
  };

  // --- control port ----------------------------------------------------------------------------
  const onControl = (sock: tls.TLSSocket, from: string): void => {
    log(`control connection from ${from}`);
    const pair = pairs.find((p) => p.control === null);
    if (!pair) {
      log(`no_available_listeners for ${from} (all ${pairs.length} pair(s) assigned)`);
      sock.end('no_available_listeners\r\n');
      setTimeout(() => sock.destroy(), 2000).unref();
      return;
    }
    pair.control = sock;
    pair.owner = from;
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 10_000);
    sock.write(`public_listener ${cfg.host}:${pair.publicPort}\r\n`);
    sock.write(`reverse_listener ${cfg.host}:${pair.reversePort}\r\n`);
    log(`assigned pair ${pair.index} to ${from}: public_listener ${cfg.host}:${pair.publicPort}, reverse_listener ${cfg.host}:${pair.reversePort}`);

    let buffered = '';
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        log(`control line from ${from} ignored: ${quote(line)}`);
      }
      if (buffered.length > MAX_CONTROL_BUFFER) {
        log(`control connection from ${from} sent more than ${MAX_CONTROL_BUFFER} bytes without a line end, dropped`);
        sock.destroy();
      }
    });
    sock.on('error', (e) => log(`control connection from ${from}: ${e.message}`));
    sock.once('close', () => {
      log(`control connection from ${from} closed`);
      if (pair.control === sock) release(pair, 'control connection closed');
    });
  };

  // --- splicing ------------------------------------------------------------------------------
  const splice = (pair: Pair, client: Queued, server: tls.TLSSocket, serverFrom: string): void => {
    const id = ++sessionSeq;
    const started = Date.now();
    let up = 0; // client → server
    let down = 0; // server → client
    let closed = 0;
    log(`splice established: session ${id} on pair ${pair.index}, client ${client.from} <-> server ${serverFrom}`);
    const c = client.sock;
    c.setNoDelay(true);
    server.setNoDelay(true);
    c.on('data', (b: Buffer) => (up += b.length));
    server.on('data', (b: Buffer) => (down += b.length));
    const wire = (from: tls.TLSSocket, to: tls.TLSSocket, name: string) => {
      from.on('error', (e) => {
        log(`session ${id}: ${name} failed: ${e.message}`);
        to.destroy();
      });
      from.once('close', () => {
        if (!to.destroyed) {
          to.end();
          setTimeout(() => to.destroy(), LINGER_MS).unref();
        }
        if (++closed === 2) {
          log(`session ${id} closed after ${Date.now() - started} ms: client->server ${up} bytes, server->client ${down} bytes`);
        }
      });
    };
    wire(c, server, 'client');
    wire(server, c, 'server');
    c.pipe(server);
    server.pipe(c);
  };

  // --- pool ports ----------------------------------------------------------------------------
  const onPublic = (pair: Pair) => (raw: net.Socket) => {
    const from = remoteOf(raw);
    if (pair.control === null) {
      log(`client ${from} on unassigned public port ${pair.publicPort}: dropped`);
      raw.destroy();
      return;
    }
    acceptTls(raw, `public port ${pair.publicPort}`, (sock) => {
      const control = pair.control;
      if (control === null) {
        log(`client ${from} on public port ${pair.publicPort}: pair released meanwhile, dropped`);
        sock.destroy();
        return;
      }
      if (pair.queue.length >= MAX_QUEUED) {
        log(`client ${from} on public port ${pair.publicPort}: ${MAX_QUEUED} clients already queued, dropped`);
        sock.destroy();
        return;
      }
      sock.pause();
      const q: Queued = {
        sock,
        from,
        timer: setTimeout(() => {
          const i = pair.queue.indexOf(q);
          if (i >= 0) pair.queue.splice(i, 1);
          log(`client ${from} on pair ${pair.index} not paired within ${QUEUE_MS} ms, dropped`);
          sock.destroy();
        }, QUEUE_MS),
      };
      sock.on('error', () => {}); // while queued; splice() logs errors once paired
      sock.once('close', () => {
        clearTimeout(q.timer);
        const i = pair.queue.indexOf(q);
        if (i >= 0) {
          pair.queue.splice(i, 1);
          log(`queued client ${from} on pair ${pair.index} went away before being paired`);
        }
      });
      pair.queue.push(q);
      log(`client ${from} queued on pair ${pair.index} (${pair.queue.length} waiting)`);
      control.write('new_connection\r\n');
      log(`new_connection sent to server ${pair.owner} (pair ${pair.index})`);
    });
  };

  const onReverse = (pair: Pair) => (raw: net.Socket) => {
    const from = remoteOf(raw);
    if (pair.control === null || pair.queue.length === 0) {
      log(`reverse connection ${from} on port ${pair.reversePort}: ${pair.control === null ? 'pair unassigned' : 'no client queued'}, dropped`);
      raw.destroy();
      return;
    }
    acceptTls(raw, `reverse port ${pair.reversePort}`, (sock) => {
      const client = pair.queue.shift();
      if (!client) {
        log(`reverse connection ${from} on port ${pair.reversePort}: no client queued any more, dropped`);
        sock.destroy();
        return;
      }
      clearTimeout(client.timer);
      splice(pair, client, sock, from);
    });
  };

  // --- binding -------------------------------------------------------------------------------
  const servers: net.Server[] = [];
  const bind = (port: number, what: string, onConnection: (raw: net.Socket) => void): Promise<net.Server> =>
    new Promise((resolve, reject) => {
      const srv = net.createServer(onConnection);
      servers.push(srv);
      srv.once('error', (e) => reject(new Error(`cannot listen on ${cfg.listen.address}:${port} (${what}): ${e.message}`)));
      srv.listen({ port, host: cfg.listen.address, exclusive: true }, () => {
        srv.removeAllListeners('error');
        srv.on('error', (e) => log(`${what}: ${e.message}`));
        resolve(srv);
      });
    });

  const stop = (signal: string) => {
    log(`${signal}: closing ${servers.length} listening port(s) and ${sockets.size} connection(s)`);
    for (const s of servers) s.close();
    for (const s of sockets) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const control = bind(cfg.listen.port, 'control port', (raw) => acceptTls(raw, 'control port', onControl));
  const pool = pairs.flatMap((p) => [bind(p.publicPort, `public port of pair ${p.index}`, onPublic(p)), bind(p.reversePort, `reverse port of pair ${p.index}`, onReverse(p))]);
  Promise.all([control, ...pool]).then(
    ([ctl]) => {
      const addr = ctl.address() as net.AddressInfo;
      const listen = formatEndpoint({ address: cfg.listen.address, port: addr.port });
      log(`listening: control ${listen}, ${pairs.length} pair(s) on ports ${cfg.firstPort}-${cfg.lastPort}, advertised host ${cfg.host}`);
      process.stdout.write(JSON.stringify({ ready: true, listen, pairs: pairs.length }) + '\n');
    },
    (err: Error) => {
      log(err.message);
      process.exit(1);
    },
  );
}

main();
