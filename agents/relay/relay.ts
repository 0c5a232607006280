// TCP/TLS relay speaking the tx_tlsrelay line protocol, for peers that cannot reach each other directly.
//
// At start the relay binds its TLS control port (NMX_LISTEN) and a pool of listening ports
// (NMX_RELAY_PORTS "FIRST-LAST", an even count): pair i is (FIRST+2i, FIRST+2i+1) = (public port,
// reverse port). Every socket on every port is TLS with the relay's certificate; lines end in "\r\n".
// tx_tlsrelay trusts every lab node; this relay adds three guards to its line protocol (issue 11):
// a per-run credential (NMX_RELAY_SECRET, peers get it too), at most MAX_PAIRS_PER_CLIENT pairs per
// source address, and a per-allocation token that binds a reverse port to the server that owns it.
//
//   server → control port      first line `auth SECRET` (within 5 s). A wrong or missing one gets
//                              `auth_failed` and the connection is closed. Otherwise the relay assigns
//                              a free pair and sends
//                                 reverse_token TOKEN              (this allocation's; 32 hex digits)
//                                 public_listener HOST:PUBLIC      (where clients connect)
//                                 reverse_listener HOST:REVERSE    (where the server connects back)
//                              or `too_many_listeners` when the server's address already holds
//                              MAX_PAIRS_PER_CLIENT pairs, or `no_available_listeners` with every pair
//                              taken; after either error line the relay closes the connection.
//   client → public port       queued (paused: its bytes wait in the relay, nothing is lost) and the
//                              relay sends `new_connection` on the server's control connection.
//   server → reverse port      from the control connection's source address (any other address is
//                              dropped before any TLS work), first line `reverse_token TOKEN` (within
//                              5 s; anything else and the connection is closed, having received
//                              nothing); then paired with the oldest queued client of that pair, and
//                              bytes the server sent after the token line go to that client. From
//                              then on the relay pipes bytes both ways until either side ends (the
//                              other is ended) or fails (the other is destroyed).
//
// A client queued longer than 10 s is dropped; a connection to an unassigned public port, or a reverse
// connection with no client waiting, is dropped before any TLS work. When a control connection closes
// its pair is released (queued clients dropped; sessions already spliced carry on). Lines the server
// sends on the control connection after `auth` are logged and ignored (at most 4 KiB may be buffered).
//
// stdout: exactly one line once every port is bound, {"ready":true,"listen":"ip:port","pairs":N}.
// stderr: one ISO-stamped line per event. Exit codes: 0 on SIGTERM/SIGINT, 1 when a port cannot be
// bound, 2 for a bad environment. Only node built-ins are imported: the agent is bundled by esbuild.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
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
} from '../sdk/index.ts';

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
/** Port pairs one source address may hold at once; one more request gets `too_many_listeners`. A peer
 * needs one (its listener); two leave room for a listener whose release has not reached the relay yet. */
const MAX_PAIRS_PER_CLIENT = 2;
/** A control connection must send its `auth` line within this long of its TLS handshake. */
const AUTH_MS = 5_000;
/** A reverse connection must send its `reverse_token` line within this long of its TLS handshake. */
const REVERSE_LINE_MS = 5_000;
/** Longest first line accepted on a reverse connection (`reverse_token` + 32 hex digits fit easily). */
const MAX_REVERSE_LINE = 256;
/** The run's credential: printable ASCII without spaces (it travels in a line), this long. */
const SECRET_RE = /^[\x21-\x7e]{16,512}$/;

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
  /** the run's credential a server proves with its `auth` line */
  secret: string;
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
  const secret = envString(env, 'NMX_RELAY_SECRET');
  if (!SECRET_RE.test(secret)) {
    throw new EnvError('NMX_RELAY_SECRET', `is ${secret.length} character(s) long or holds a space or control character: expected 16-512 printable ASCII characters`);
  }
  return { listen, cert, key, firstPort, lastPort, host, secret };
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
  /** remote address of the control connection: only it may connect to the reverse port */
  ownerIp: string;
  /** this allocation's token: a reverse connection's first line must carry it */
  token: string;
  queue: Queued[];
}

const ipOf = (s: net.Socket): string => (s.remoteAddress ?? '?').replace(/^::ffff:/, '');
const remoteOf = (s: net.Socket): string => `${ipOf(s)}:${s.remotePort ?? 0}`;

/** Constant-time comparison of two strings of any length (both are hashed first). */
const sameSecret = (a: string, b: string): boolean => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

function main(): void {
  const cfg = configOrExit(readRelayConfig, 'relay');
  const ctx = tls.createSecureContext({ cert: cfg.cert, key: cfg.key });
  const pairs: Pair[] = [];
  for (let p = cfg.firstPort; p < cfg.lastPort; p += 2) {
    pairs.push({ index: pairs.length, publicPort: p, reversePort: p + 1, control: null, owner: '', ownerIp: '', token: '', queue: [] });
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
    pair.ownerIp = '';
    pair.token = '';
  };

  // --- control port ----------------------------------------------------------------------------
  /** Send an error line and close: the relay says why instead of leaving the server hanging. */
  const refuse = (sock: tls.TLSSocket, line: string): void => {
    sock.end(`${line}\r\n`);
    setTimeout(() => sock.destroy(), 2000).unref();
  };

  /** The control connection proved the run's credential: assign a pair within the per-client limit. */
  const assign = (sock: tls.TLSSocket, from: string, ip: string): Pair | null => {
    const held = pairs.filter((p) => p.control !== null && p.ownerIp === ip).length;
    if (held >= MAX_PAIRS_PER_CLIENT) {
      log(`too_many_listeners for ${from} (${ip} already holds ${held} pair(s), at most ${MAX_PAIRS_PER_CLIENT} per client)`);
      refuse(sock, 'too_many_listeners');
      return null;
    }
    const pair = pairs.find((p) => p.control === null);
    if (!pair) {
      log(`no_available_listeners for ${from} (all ${pairs.length} pair(s) assigned)`);
      refuse(sock, 'no_available_listeners');
      return null;
    }
    pair.control = sock;
    pair.owner = from;
    pair.ownerIp = ip;
    pair.token = randomBytes(16).toString('hex');
    sock.setKeepAlive(true, 10_000);
    sock.write(`reverse_token ${pair.token}\r\n`);
    sock.write(`public_listener ${cfg.host}:${pair.publicPort}\r\n`);
    sock.write(`reverse_listener ${cfg.host}:${pair.reversePort}\r\n`);
    log(`assigned pair ${pair.index} to ${from}: public_listener ${cfg.host}:${pair.publicPort}, reverse_listener ${cfg.host}:${pair.reversePort}`);
    return pair;
  };

  const onControl = (sock: tls.TLSSocket, from: string): void => {
    log(`control connection from ${from}`);
    const ip = ipOf(sock);
    sock.setNoDelay(true);
    let pair: Pair | null = null;
    let state: 'auth' | 'assigned' | 'refused' = 'auth';
    const authFailed = (why: string) => {
      state = 'refused';
      clearTimeout(authTimer);
      log(`auth_failed for ${from} (${why})`);
      refuse(sock, 'auth_failed');
    };
    const authTimer = setTimeout(() => authFailed(`no auth line within ${AUTH_MS} ms`), AUTH_MS);

    const onLine = (line: string) => {
      if (state === 'refused') return;
      if (state === 'auth') {
        const m = /^auth (\S+)$/.exec(line);
        if (!m) return authFailed(`first line is not "auth SECRET": ${quote(line.slice(0, 64))}`);
        if (!sameSecret(m[1]!, cfg.secret)) return authFailed('wrong credential');
        clearTimeout(authTimer);
        pair = assign(sock, from, ip);
        state = pair ? 'assigned' : 'refused';
        return;
      }
      log(`control line from ${from} ignored: ${quote(line)}`);
    };

    let buffered = '';
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        onLine(line);
      }
      if (buffered.length > MAX_CONTROL_BUFFER) {
        log(`control connection from ${from} sent more than ${MAX_CONTROL_BUFFER} bytes without a line end, dropped`);
        sock.destroy();
      }
    });
    sock.on('error', (e) => log(`control connection from ${from}: ${e.message}`));
    sock.once('close', () => {
      clearTimeout(authTimer);
      log(`control connection from ${from} closed`);
      const p = pair as Pair | null;
      if (p && p.control === sock) release(p, 'control connection closed');
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
    if (ipOf(raw) !== pair.ownerIp) {
      log(`reverse connection ${from} on port ${pair.reversePort}: not from the pair's server ${pair.owner}, dropped`);
      raw.destroy();
      return;
    }
    const token = pair.token; // this allocation's: a pair released and reassigned meanwhile has another
    acceptTls(raw, `reverse port ${pair.reversePort}`, (sock) => {
      // nothing reaches this connection before its first line proved the allocation's token
      let buffered = Buffer.alloc(0);
      const drop = (why: string) => {
        clearTimeout(timer);
        sock.off('data', onData);
        log(`reverse connection ${from} on port ${pair.reversePort}: ${why}, dropped`);
        sock.destroy();
      };
      const timer = setTimeout(() => drop(`no reverse_token line within ${REVERSE_LINE_MS} ms`), REVERSE_LINE_MS);
      const onData = (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        const nl = buffered.indexOf(0x0a);
        if (nl < 0) {
          if (buffered.length > MAX_REVERSE_LINE) drop(`more than ${MAX_REVERSE_LINE} bytes without a line end`);
          return;
        }
        clearTimeout(timer);
        sock.off('data', onData);
        sock.pause();
        const line = buffered.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        const rest = buffered.subarray(nl + 1);
        const m = /^reverse_token (\S+)$/.exec(line);
        if (!m) return drop(`first line is not "reverse_token TOKEN": ${quote(line.slice(0, 64))}`);
        if (pair.token !== token || !sameSecret(m[1]!, token)) return drop('wrong reverse_token');
        const client = pair.queue.shift();
        if (!client) return drop('no client queued any more');
        clearTimeout(client.timer);
        if (rest.length > 0) sock.unshift(rest); // the server's first bytes for the client
        splice(pair, client, sock, from);
      };
      sock.on('data', onData);
      sock.on('error', () => {}); // before the splice; splice() logs errors once paired
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
