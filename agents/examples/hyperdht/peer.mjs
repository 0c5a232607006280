#!/usr/bin/env node
// natmatrix peer agent for hyperdht (Holepunch): both roles in one program.
//
//   NMX_ROLE=b  server: dht.createServer().listen(keyPair) on a key pair derived from NMX_SECRET +
//               NMX_SESSION; echoes "ping" with "pong", and is done when "done" arrives.
//   NMX_ROLE=a  client: dht.connect(publicKey) to the same key pair (retried while the server is not
//               announced yet), sends "ping", waits for "pong", answers "done" and waits for its ack.
//
// The DHT is the private testnet that bootstrap.mjs runs on NMX_RENDEZVOUS. hyperdht's main UDP socket
// is bound on NMX_LOCAL_PORT (the `port` option, anyPort: false), but note that hyperdht punches from
// fresh sockets on random ports (lib/socket-pool.js), never from that one.
//
// stdout carries nothing but the verdict (the last line):
//   {"ok":true,"path":"direct-udp","peer":"<ip:port of the UDX stream's remote>","timeToDirectMs":..}
//   {"ok":false,"path":null,"peer":null,"reason":".."}
// exit 0 / 1; 2 on a bad environment; 3 on an internal fault; 143 / 130 on SIGTERM / SIGINT.
// Gives up NMX_BUDGET_MS after start (less 750 ms to exit in time), or NMX_WAIT_MS + NMX_TIMEOUT_MS when
// that is not set.
//
// Knobs for experiments (inherited from the CLI's environment): HDHT_RANDOM_PUNCH_INTERVAL (ms,
// hyperdht's randomPunchInterval, default 20000), HDHT_RETRY=0 (one connect attempt only),
// HDHT_LOW_TTL=N (send hyperdht's TTL-5 "open session" packets with TTL N; see below).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
const startupT0 = performance.now(); // ms since node's time origin, before hyperdht is loaded
// The harness's deadline runs from the moment it spawned us. Node's time origin comes later, by 10 ms
// on an idle machine and by up to 0.5 s on a loaded one, so anchor t0 on NMX_SPAWNED_AT_MS, or else on
// the kernel's start time of this process (nsenter exec()s node, so this PID is the one the harness
// spawned).
function kernelAgeMs() {
  try {
    const ticks = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[19]);
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const age = uptime * 1000 - ticks * 10; // USER_HZ is 100 on Linux
    return age >= 0 && age < 60_000 ? age : null;
  } catch {
    return null;
  }
}
// the harness says when it spawned us (NMX_SPAWNED_AT_MS); without it, the kernel's start time
const spawnedAt = Number(process.env.NMX_SPAWNED_AT_MS);
const ageAtT0 = Number.isFinite(spawnedAt) && spawnedAt > 0 ? Date.now() - spawnedAt : kernelAgeMs();
const originLagMs = ageAtT0 === null ? 0 : Math.max(0, ageAtT0 - performance.now());
const { default: DHT } = await import('hyperdht');
const { default: Holepuncher } = await import('hyperdht/lib/holepuncher.js');
const { default: RawStreamSet } = await import('hyperdht/lib/raw-stream-set.js');
const { default: Router } = await import('hyperdht/lib/router.js');
const startupMs = performance.now();

// ---------------------------------------------------------------------------------------------- io
// nothing but the verdict on stdout, whoever logs
console.log = console.info = console.debug = console.warn = console.error;
const role = process.env.NMX_ROLE;
// every time (the budget, sinceStartMs) counts from the process's start (the kernel's), as the
// harness's deadline does: loading hyperdht alone takes 0.3-1.5 s on a busy 2-core machine
const t0 = -originLagMs; // in performance.now() terms: the process's start
const since = () => Math.round(performance.now() - t0);
// timeToDirectMs counts from the start of connect/listen: the moment the DHT node is created (it
// bootstraps, then connects or listens), i.e. without node's and hyperdht's start-up
let tNet = null;
const sinceNet = () => Math.round(performance.now() - (tNet ?? t0));
const log = (...a) => console.error(`[${process.env.NMX_SESSION ?? '?'} ${role ?? '?'} +${since()}ms]`, ...a);

// Give up this long before the budget ends: on a loaded 2-core machine a timer fires late and exiting
// takes a while, and the harness saw agents end up to 1.3 s after their budget (its grace is 1.5 s).
const EARLY_MS = 750;
// a stream that opened but carried no pong for this long is abandoned (see attempt())
const STALL_MS = 3000;

let finished = false;
function finish(code, verdict, lingerMs = 0) {
  if (finished) return;
  finished = true;
  const rss = Math.round(process.memoryUsage().rss / 1048576);
  log(`verdict (exit ${code}, rss ${rss} MiB): ${JSON.stringify(verdict)}`);
  const line = JSON.stringify({ ...verdict, rssMiB: rss, startupMs: Math.round(startupMs - t0), role }) + '\n';
  // lingerMs: stay up a moment after the verdict (the server, so its UDX stack acks the client's "done")
  process.stdout.write(line, () => setTimeout(() => process.exit(code), lingerMs));
  setTimeout(() => process.exit(code), 500 + lingerMs).unref();
}
const fail = (reason, code = 1) => finish(code, { ok: false, path: null, peer: null, reason });

function envOrDie() {
  const bad = [];
  const need = (k) => (process.env[k] ? process.env[k] : (bad.push(`${k} missing`), ''));
  const e = {
    role: need('NMX_ROLE'),
    session: need('NMX_SESSION'),
    secret: need('NMX_SECRET'),
    rendezvous: need('NMX_RENDEZVOUS'),
    port: Number(process.env.NMX_LOCAL_PORT ?? 0),
  };
  if (e.role && e.role !== 'a' && e.role !== 'b') bad.push(`NMX_ROLE=${e.role} (want a or b)`);
  if (e.rendezvous && !/^\d+\.\d+\.\d+\.\d+:\d+$/.test(e.rendezvous)) bad.push(`NMX_RENDEZVOUS=${e.rendezvous} (want ip:port)`);
  if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) bad.push(`NMX_LOCAL_PORT=${process.env.NMX_LOCAL_PORT}`);
  const budget = process.env.NMX_BUDGET_MS
    ? Number(process.env.NMX_BUDGET_MS)
    : Number(process.env.NMX_WAIT_MS ?? 5000) + Number(process.env.NMX_TIMEOUT_MS ?? 5000);
  if (!(budget > 0)) bad.push('NMX_BUDGET_MS / NMX_WAIT_MS + NMX_TIMEOUT_MS is not a positive number');
  if (bad.length) {
    log(`bad environment: ${bad.join('; ')}`);
    fail(`bad environment: ${bad.join('; ')}`, 2);
    return null;
  }
  return { ...e, budget };
}

const env = envOrDie();
if (env) {
  process.on('SIGTERM', () => fail(`SIGTERM after ${since()} ms (${state()})`, 143));
  process.on('SIGINT', () => fail(`SIGINT after ${since()} ms (${state()})`, 130));
  process.on('uncaughtException', (err) => {
    log('uncaught exception:', err?.stack ?? err);
    fail(`internal fault: ${err?.message ?? err}`, 3);
  });
  process.on('unhandledRejection', (err) => log('unhandled rejection (ignored):', err?.code ?? '', err?.message ?? err));
  main(env).catch((err) => {
    log('main failed:', err?.stack ?? err);
    fail(`internal fault: ${err?.code ?? ''} ${err?.message ?? err}`.trim(), 3);
  });
}

// ---------------------------------------------------------------------------------- what happened
const FW = ['UNKNOWN', 'OPEN', 'CONSISTENT', 'RANDOM'];
const fw = (n) => FW[n] ?? String(n);
const addrs = (l) => (l ? l.map((x) => `${x.host}:${x.port}${x.verified ? '(verified)' : ''}`).join(',') : '-');
const seen = { local: null, remote: null, strategy: null, errors: [], attempts: 0, birthday: 0 };
function state() {
  const parts = [];
  if (seen.local) parts.push(`local NAT ${seen.local}`);
  if (seen.remote) parts.push(`remote NAT ${seen.remote}`);
  if (seen.strategy) parts.push(`strategy ${seen.strategy}`);
  if (seen.birthday) parts.push(`${seen.birthday} birthday sockets`);
  if (role === 'a') parts.push(`${seen.attempts} connect attempts`);
  if (seen.errors.length) parts.push(`errors: ${[...new Set(seen.errors)].join(', ')}`);
  if (/^RANDOM/.test(seen.local ?? '') && /^RANDOM/.test(seen.remote ?? ''))
    parts.unshift('both NATs randomized: hyperdht refuses to punch (connect.js probeRound, HOLEPUNCH_DOUBLE_RANDOMIZED_NATS)');
  return parts.join('; ') || 'nothing happened';
}

// Logging only: wrap a few Holepuncher methods to see hyperdht's own NAT classification and choice.
{
  const P = Holepuncher.prototype;
  const analyze = P.analyze;
  P.analyze = async function (allowReopen) {
    const r = await analyze.call(this, allowReopen);
    seen.local = `${fw(this.nat.firewall)} [${addrs(this.nat.addresses)}] (${this.nat.sampled} samples)`;
    seen.remote = `${fw(this.remoteFirewall)} [${addrs(this.remoteAddresses)}]`;
    log(`holepuncher analyze(allowReopen=${allowReopen}) -> stable=${r}: local ${seen.local}, remote ${seen.remote}, punch socket :${this.socket?.address()?.port}`);
    return r;
  };
  const punch = P._punch;
  P._punch = async function () {
    const local = fw(this.nat.firewall);
    const remote = fw(this.remoteFirewall);
    const r = await punch.call(this);
    const c = (x) => (x === 'OPEN' ? 'CONSISTENT' : x);
    seen.strategy = !r
      ? `none (local ${local}, remote ${remote}: not punchable)`
      : c(local) === 'CONSISTENT' && c(remote) === 'CONSISTENT'
        ? 'consistent probe (both consistent)'
        : c(local) === 'CONSISTENT'
          ? 'random probes (remote random: ping random ports of its address)'
          : 'birthday sockets (local random: open up to 256 sockets to the remote)';
    log(`holepuncher punch() -> ${r}: ${seen.strategy}; remote addresses ${addrs(this.remoteAddresses)}`);
    return r;
  };
  const birthday = P._openBirthdaySockets;
  P._openBirthdaySockets = async function (addr) {
    await birthday.call(this, addr);
    seen.birthday = this._allHolders.length;
    log(`holepuncher opened ${this._allHolders.length} birthday sockets towards ${addr.host}:${addr.port}`);
  };
  // and how the client's stream got its remote: a UDX packet for it arriving from somewhere (udx's
  // firewall hook, lib/connect.js) or the handshake's answer
  const add = RawStreamSet.prototype.add;
  RawStreamSet.prototype.add = function (opts) {
    const fw = opts && opts.firewall;
    let stream;
    if (fw) {
      opts = {
        ...opts,
        firewall(socket, port, host) {
          log(`udx packet for stream ${stream?.id} from ${host}:${port} on local :${socket.address()?.port} (firewall hook)`);
          return fw.call(this, socket, port, host);
        },
      };
    }
    stream = add.call(this, opts);
    return stream;
  };
  const peerHandshake = Router.prototype.peerHandshake;
  Router.prototype.peerHandshake = async function (target, o, to) {
    const r = await peerHandshake.call(this, target, o, to);
    log(`handshake via ${to.host}:${to.port}: relayed=${r.relayed}, server ${r.serverAddress.host}:${r.serverAddress.port}, we are ${r.clientAddress.host}:${r.clientAddress.port}`);
    return r;
  };
  const onmsg = P._onholepunchmessage;
  let n = 0;
  P._onholepunchmessage = function (msg, addr, ref) {
    if (n++ < 5) log(`holepunch packet from ${addr.host}:${addr.port} on local :${ref.socket.address()?.port}${this.isInitiator ? ' (initiator: connected)' : ' (echoing)'}`);
    return onmsg.call(this, msg, addr, ref);
  };
}

// ------------------------------------------------------------------------------------------- main
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


async function main(e) {
  const deadline = t0 + Math.max(e.budget / 2, e.budget - EARLY_MS);
  const remaining = () => deadline - performance.now();
  setTimeout(() => fail(`gave up after ${since()} ms (budget ${e.budget} ms): ${state()}`), Math.max(0, remaining())).unref?.();
  const keepAlive = setInterval(() => {}, 1 << 30); // the budget timer is unref'd; this keeps us alive

  const seed = createHash('sha256').update(`natmatrix-hyperdht\0${e.secret}\0${e.session}`).digest();
  const serverKeys = DHT.keyPair(seed);
  const [rhost, rport] = e.rendezvous.split(':');
  const opts = {
    bootstrap: [{ host: rhost, port: Number(rport) }],
    host: '0.0.0.0',
    ...(e.port ? { port: e.port, anyPort: false } : {}),
    ...(process.env.HDHT_RANDOM_PUNCH_INTERVAL ? { randomPunchInterval: Number(process.env.HDHT_RANDOM_PUNCH_INTERVAL) } : {}),
  };
  let dht;
  try {
    tNet = performance.now();
    dht = new DHT(opts);
    await dht.bind();
  } catch (err) {
    log(`cannot bind the DHT on 0.0.0.0:${e.port}: ${err?.message ?? err}`);
    fail(`cannot bind UDP 0.0.0.0:${e.port}: ${err?.code ?? ''} ${err?.message ?? err}`.trim(), 2);
    return;
  }
  const lowTtl = Number(process.env.HDHT_LOW_TTL ?? 0);
  if (lowTtl > 0) {
    // Experiment knob: hyperdht opens NAT sessions with 1-byte holepunch packets at TTL 5 (holepuncher.js
    // HOLEPUNCH_TTL), meant to open the local NAT but die before the remote one. The lab is only two
    // routed hops deep, so TTL 5 reaches the peer; HDHT_LOW_TTL=2 makes them die at the remote router,
    // as on the internet.
    const S = Object.getPrototypeOf(dht.io.serverSocket);
    const send = S.send;
    S.send = function (buf, port, host, ttl) {
      return send.call(this, buf, port, host, ttl === 5 && buf.byteLength === 1 ? lowTtl : ttl);
    };
    log(`low-TTL holepunch packets sent with TTL ${lowTtl} instead of 5`);
  }
  log(`hyperdht bound (${since()} ms after process start, node's time origin ${Math.round(originLagMs)} ms after it): server socket :${dht.io.serverSocket.address().port}, client socket :${dht.io.clientSocket.address().port}; bootstrap ${e.rendezvous}; budget ${e.budget} ms; module load ${Math.round(startupMs - startupT0)} ms`);
  await dht.fullyBootstrapped();
  log(`bootstrapped: ${dht.nodes.length} DHT nodes known, firewalled=${dht.firewalled}, public ${dht.host}:${dht.port}`);

  const holepunchHook = (remoteFirewall, localFirewall, remoteAddresses, localAddresses) => {
    log(`holepunch decision: local ${fw(localFirewall)} [${addrs(localAddresses)}] vs remote ${fw(remoteFirewall)} [${addrs(remoteAddresses)}]`);
    return true; // hyperdht's default: always try
  };

  if (e.role === 'b') await serve(e, dht, serverKeys, holepunchHook);
  else await dial(e, dht, serverKeys, holepunchHook, remaining);
  void keepAlive; // never cleared: finish() ends the process
}

function peerOf(sock) {
  const raw = sock.rawStream;
  return raw && raw.remoteHost ? `${raw.remoteHost}:${raw.remotePort}` : null;
}

async function serve(e, dht, keyPair, holepunch) {
  const server = dht.createServer({ holepunch });
  server.on('connection', (sock) => {
    log(`connection from ${peerOf(sock)} (udx stream id ${sock.rawStream?.id})`);
    sock.on('error', (err) => {
      seen.errors.push(err.code || err.message);
      log(`connection error: ${err.code ?? ''} ${err.message}`);
    });
    sock.on('data', (buf) => {
      const msg = buf.toString();
      if (msg === `ping ${e.session}`) {
        log(`ping from ${peerOf(sock)}, echoing`);
        sock.write(Buffer.from(`pong ${e.session}`));
      } else if (msg === `done ${e.session}`) {
        finish(0, { ok: true, path: 'direct-udp', peer: peerOf(sock), timeToDirectMs: sinceNet(), sinceStartMs: since() }, 250);
      } else log(`unexpected message ${JSON.stringify(msg.slice(0, 80))}`);
    });
  });
  await server.listen(keyPair);
  log(`listening and announced as ${keyPair.publicKey.toString('hex').slice(0, 16)}… (${server.relayAddresses.length} relay nodes)`);
}

async function dial(e, dht, keyPair, holepunch, remaining) {
  const retry = process.env.HDHT_RETRY !== '0';
  const connectT0 = performance.now();
  while (!finished && remaining() > 300) {
    seen.attempts++;
    const n = seen.attempts;
    const r = await attempt(e, dht, keyPair.publicKey, holepunch, n, connectT0);
    if (finished) return;
    if (r.ok) return;
    seen.errors.push(r.code);
    log(`attempt ${n} failed: ${r.code} ${r.message}`);
    if (!retry) break;
    // not announced yet: ask again soon; a failed holepunch: give the NATs' state a moment
    await sleep(r.code === 'PEER_NOT_FOUND' ? 100 : 1000);
  }
}

function attempt(e, dht, publicKey, holepunch, n, connectT0) {
  return new Promise((resolve) => {
    const t = performance.now();
    log(`attempt ${n}: connect`);
    const sock = dht.connect(publicKey, { holepunch });
    let done = false;
    let stall = null;
    const end = (r) => {
      if (done) return;
      done = true;
      clearTimeout(stall);
      resolve(r);
    };
    sock.on('open', () => {
      log(`attempt ${n}: stream open to ${peerOf(sock)} after ${Math.round(performance.now() - t)} ms`);
      // A race in hyperdht: a client whose handshake reaches a relay node while the server's announce
      // is still in flight gets a reply with an empty relay list (announcer.js _update sets
      // this.relays only after every _commit settled), so connect.js holepunch() takes the server
      // for directly reachable ("relayed && !remoteHolepunchable") and points the stream at the
      // server's relay-facing address without punching. Nothing answers there, and the stream would
      // only fail after UDX's ~13 s timeout. A real path carries the pong within milliseconds of
      // opening, so give up on a silent stream after STALL_MS and connect again.
      stall = setTimeout(() => {
        log(`attempt ${n}: stream to ${peerOf(sock)} carried nothing for ${STALL_MS} ms (hyperdht skipped the punch); abandoning it`);
        end({ ok: false, code: 'STALLED', message: `no pong ${STALL_MS} ms after the stream opened` });
        sock.destroy();
      }, STALL_MS);
    });
    sock.on('error', (err) => end({ ok: false, code: err.code || 'ERROR', message: err.message }));
    sock.on('close', () => end({ ok: false, code: 'CLOSED', message: 'stream closed' }));
    sock.on('data', async (buf) => {
      if (buf.toString() !== `pong ${e.session}`) return log(`unexpected message ${JSON.stringify(buf.toString().slice(0, 80))}`);
      if (done) return; // abandoned (stalled) just before
      done = true; // from here on this attempt succeeds: ignore the close that follows
      clearTimeout(stall);
      const timeToDirectMs = sinceNet();
      const sinceStartMs = since();
      const connectMs = Math.round(performance.now() - connectT0);
      const peer = peerOf(sock);
      log(`pong from ${peer}; confirming`);
      sock.write(Buffer.from(`done ${e.session}`));
      // wait until the peer's UDX stack acknowledged "done", so both sides agree
      await Promise.race([sock.flush().catch(() => {}), sleep(1000)]);
      finish(0, { ok: true, path: 'direct-udp', peer, timeToDirectMs, sinceStartMs, connectMs, attempts: n });
      resolve({ ok: true });
    });
    sock.write(Buffer.from(`ping ${e.session}`));
  });
}
