// Tests of the TLS relay (agents/relay): the real relay process on 127.0.0.1 (no root, no namespaces),
// driven through the client library. Every relay process is ended by its PID in t.teardown; every
// test-side socket is destroyed at teardown.

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { type Child, spawnAgent } from './agent-process.ts';
import { dialRelay, openRelayListener, type RelayListener } from '../../agents/relay/client.ts';
import { type Endpoint, parseEndpoint } from '../../agents/sdk/index.ts';
import { makeRelayCert } from '../../harness/relay-cert.ts';

const RELAY = 'agents/relay/relay.ts';
const LOCALHOST = '127.0.0.1';

// ------------------------------------------------------------------------------------------------
// Helpers

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'nmx-relay-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Cert {
  certFile: string;
  keyFile: string;
  pem: string;
}

async function makeCert(t: ExecutionContext): Promise<Cert> {
  const { cert, key } = await makeRelayCert(await tempDir(t), [LOCALHOST]);
  return { certFile: cert, keyFile: key, pem: await readFile(cert, 'utf8') };
}

const usedPorts = new Set<number>();

function canListen(port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen({ port, host: LOCALHOST, exclusive: true }, () => resolve(s));
  });
}

/** The first port of `count` consecutive TCP ports that are free on 127.0.0.1 right now. */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const first = 20_000 + 2 * Math.floor(Math.random() * 15_000);
    const range = Array.from({ length: count }, (_, i) => first + i);
    if (range.some((p) => usedPorts.has(p))) continue;
    const held: net.Server[] = [];
    let ok = true;
    for (const p of range) {
      const s = await canListen(p);
      if (!s) {
        ok = false;
        break;
      }
      held.push(s);
    }
    await Promise.all(held.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    if (ok) {
      range.forEach((p) => usedPorts.add(p));
      return first;
    }
  }
  throw new Error(`no ${count} consecutive free TCP ports found`);
}



interface Relay {
  child: Child;
  control: Endpoint;
  /** the run's credential (NMX_RELAY_SECRET) */
  secret: string;
  pairs: number;
  firstPort: number;
  /** stderr so far */
  stderr: () => string;
  /** resolve once stderr matches (rejects after ms) */
  waitLog: (re: RegExp, ms?: number) => Promise<string>;
}

const spawnRelay = (t: ExecutionContext, env: Record<string, string>): Child => spawnAgent(t, RELAY, env, 60_000);

/** Start a relay with `pairs` port pairs; resolves after its ready line. */
async function startRelay(t: ExecutionContext, cert: Cert, pairs: number): Promise<Relay> {
  const firstPort = await freePortRange(2 * pairs);
  const secret = randomBytes(16).toString('hex');
  const child = spawnRelay(t, {
    NMX_ROLE: 'relay',
    NMX_RUN: 'unit',
    NMX_LISTEN: `${LOCALHOST}:0`,
    NMX_RELAY_CERT: cert.certFile,
    NMX_RELAY_KEY: cert.keyFile,
    NMX_RELAY_PORTS: `${firstPort}-${firstPort + 2 * pairs - 1}`,
    NMX_RELAY_SECRET: secret,
  });
  let err = '';
  const waiters: Array<() => void> = [];
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
    waiters.forEach((w) => w());
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    // 30 s, as the harness allows a service: a loaded machine (other test files, lanes) can take seconds to start node
    const timer = setTimeout(() => reject(new Error(`no ready line within 30 s; stderr:\n${err}`)), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.stdout.once('end', () => {
      clearTimeout(timer);
      reject(new Error(`relay stdout ended before a line: ${JSON.stringify(out)}; stderr:\n${err}`));
    });
  });
  const ready = JSON.parse(line) as { ready: boolean; listen: string; pairs: number };
  t.true(ready.ready);
  t.is(ready.pairs, pairs);
  const control = parseEndpoint(ready.listen);
  t.is(control.address, LOCALHOST);
  const waitLog = (re: RegExp, ms = 5000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = re.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => reject(new Error(`relay stderr did not match ${re} within ${ms} ms:\n${err}`)), ms);
      if (!check()) waiters.push(check);
    });
  return { child, control, secret, pairs, firstPort, stderr: () => err, waitLog };
}

/** Open a relay listener, closed at teardown. */
async function listen(t: ExecutionContext, relay: Relay, ca: string, onConnection: (s: tls.TLSSocket) => void = (s) => s.destroy()): Promise<RelayListener> {
  const l = await openRelayListener({ relay: relay.control, ca, secret: relay.secret, onConnection });
  t.teardown(() => l.close());
  return l;
}

function track<T extends net.Socket>(t: ExecutionContext, s: T): T {
  s.on('error', () => {});
  t.teardown(() => void s.destroy());
  return s;
}

/** Read exactly n bytes from a socket. */
function readBytes(s: net.Socket, n: number, ms = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => done(new Error(`only ${got} of ${n} bytes within ${ms} ms`)), ms);
    const onData = (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= n) done(null);
    };
    const onClose = () => done(new Error(`socket closed after ${got} of ${n} bytes`));
    const done = (e: Error | null) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      if (e) return reject(e);
      const all = Buffer.concat(parts);
      if (all.length > n) s.unshift(all.subarray(n));
      resolve(all.subarray(0, n));
    };
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/** Everything a socket receives until it closes; rejects after ms. */
function readToClose(s: net.Socket, ms: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    s.on('data', (b: Buffer) => parts.push(b));
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts));
    });
  });
}

/** Resolves with the first `n` sockets the listener hands over. */
function collector(n: number): { onConnection: (s: tls.TLSSocket) => void; sockets: Promise<tls.TLSSocket[]> } {
  const got: tls.TLSSocket[] = [];
  let resolve!: (v: tls.TLSSocket[]) => void;
  const sockets = new Promise<tls.TLSSocket[]>((r) => (resolve = r));
  return {
    onConnection: (s) => {
      s.on('error', () => {});
      got.push(s);
      if (got.length === n) resolve(got);
    },
    sockets,
  };
}

/** Server side of one relayed session: echo every byte back with each byte XOR 0xff. */
function invertingEcho(s: tls.TLSSocket): void {
  s.on('error', () => {});
  s.on('data', (b: Buffer) => s.write(Buffer.from(b.map((x) => x ^ 0xff))));
  s.on('end', () => s.end());
}

const inverted = (b: Buffer) => Buffer.from(b.map((x) => x ^ 0xff));

/** A second loopback address: a connection from it is another lab node as far as the relay can tell. */
const OTHER_HOST = '127.0.0.2';

/** A TLS connection to 127.0.0.1:port from `localAddress` (tls.connect passes it on to net.connect;
 * its option type just does not list it). */
const tlsFrom = (localAddress: string, port: number, ca: string): tls.TLSSocket =>
  tls.connect({ host: LOCALHOST, port, ca, localAddress } as tls.ConnectionOptions & net.TcpNetConnectOpts);

interface RawControl {
  sock: tls.TLSSocket;
  /** the next line the relay sends (without \r\n), or null once the connection closed */
  nextLine: (ms?: number) => Promise<string | null>;
}

/** A control connection spoken by hand: TLS from `localAddress`, then `auth <secret>` unless secret is null. */
async function rawControl(t: ExecutionContext, relay: Relay, ca: string, opts: { secret?: string | null; localAddress?: string } = {}): Promise<RawControl> {
  const sock = track(t, tlsFrom(opts.localAddress ?? LOCALHOST, relay.control.port, ca));
  await new Promise((resolve, reject) => {
    sock.once('secureConnect', resolve);
    sock.once('error', reject);
  });
  const secret = opts.secret === undefined ? relay.secret : opts.secret;
  if (secret !== null) sock.write(`auth ${secret}\r\n`);
  const lines: string[] = [];
  let buffered = '';
  let closed = false;
  const wake: Array<() => void> = [];
  sock.setEncoding('latin1');
  sock.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, nl).replace(/\r$/, ''));
      buffered = buffered.slice(nl + 1);
    }
    wake.splice(0).forEach((w) => w());
  });
  sock.once('close', () => {
    closed = true;
    wake.splice(0).forEach((w) => w());
  });
  const nextLine = (ms = 10_000) =>
    new Promise<string | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no control line within ${ms} ms`)), ms);
      const check = () => {
        if (lines.length > 0) return (clearTimeout(timer), resolve(lines.shift()!));
        if (closed) return (clearTimeout(timer), resolve(null));
        wake.push(check);
      };
      check();
    });
  return { sock, nextLine };
}

/** What a TLS connection to `port` from `localAddress` receives (after writing `first`, if any) until it
 * closes or 8 s have passed (the relay waits 5 s for a token line), and whether the relay closed it by then. */
async function strangerReads(t: ExecutionContext, port: number, ca: string, localAddress: string, first?: string): Promise<{ bytes: Buffer; closed: boolean }> {
  const s = track(t, tlsFrom(localAddress, port, ca));
  const parts: Buffer[] = [];
  s.on('data', (b: Buffer) => parts.push(b));
  if (first !== undefined) s.once('secureConnect', () => s.write(first));
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 8000);
    s.once('close', () => (clearTimeout(timer), resolve(true)));
  });
  s.destroy();
  return { bytes: Buffer.concat(parts), closed };
}

// ------------------------------------------------------------------------------------------------
// Tests
//
// Issue 11, defect 4: the relay could be starved (one peer took every port pair) and hijacked (a stranger
// on a reverse port got a waiting client's bytes). The first three tests are that issue's.

test('a greedy server is refused past the per-client limit and a legitimate server still gets a pair and relays', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 6);
  // another lab node asks for pairs until the relay refuses, each on its own control connection
  const granted: string[] = [];
  let refusal: string | null = null;
  for (let i = 0; i < 6 && refusal === null; i++) {
    const ctl = await rawControl(t, relay, cert.pem, { localAddress: OTHER_HOST });
    const lines: string[] = [];
    for (;;) {
      const line = await ctl.nextLine();
      if (line === null) break;
      lines.push(line);
      if (lines.some((l) => l.startsWith('public_listener')) && lines.some((l) => l.startsWith('reverse_listener'))) break;
    }
    const pub = lines.find((l) => l.startsWith('public_listener'));
    if (pub) granted.push(pub);
    else refusal = lines.join(' | ');
  }
  t.true(granted.length >= 1 && granted.length <= 2, `a single client got ${granted.length} pair(s) of 6`);
  t.is(refusal, 'too_many_listeners', 'over the limit: an error line, then the relay closes');
  await relay.waitLog(/too_many_listeners for 127\.0\.0\.2:\d+/);

  // a legitimate server still gets a pair, and a client reaches it through the relay
  const lis = await listen(t, relay, cert.pem, invertingEcho);
  const client = track(t, await dialRelay(lis.publicListener, cert.pem));
  client.write('legit');
  t.true((await readBytes(client, 5)).equals(inverted(Buffer.from('legit'))));
});

test('a control connection without the run\'s credential is refused: no pair is assigned', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 2);
  // a wrong secret: an error line, then the connection closes
  const wrong = await rawControl(t, relay, cert.pem, { secret: 'f'.repeat(32) });
  t.is(await wrong.nextLine(), 'auth_failed');
  t.is(await wrong.nextLine(), null, 'closed after auth_failed');
  // the client library reports it
  await t.throwsAsync(openRelayListener({ relay: relay.control, ca: cert.pem, secret: 'not-the-secret-of-this-run', onConnection: () => {} }), { message: /auth_failed/ });
  // a tx_tlsrelay server that sends nothing gets no listener either: it waits for an auth line, then refuses
  const silent = await rawControl(t, relay, cert.pem, { secret: null });
  t.is(await silent.nextLine(15_000), 'auth_failed');
  t.is(await silent.nextLine(), null);
  await relay.waitLog(/auth_failed for 127\.0\.0\.1:\d+/);
  t.notRegex(relay.stderr(), /assigned pair/, 'no pair was assigned to any of them');
  // both pairs are still free for the run's peers
  const one = await listen(t, relay, cert.pem);
  const two = await listen(t, relay, cert.pem);
  t.deepEqual([one.publicListener.port, two.publicListener.port], [relay.firstPort, relay.firstPort + 2]);
});

test('a stranger on a reverse port gets none of a waiting client\'s bytes; the owning server gets them all', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 1);
  // the owner: a server on 127.0.0.1 that does not answer new_connection at once
  const ctl = await rawControl(t, relay, cert.pem);
  const got: string[] = [];
  while (!(got.some((l) => l.startsWith('public_listener ')) && got.some((l) => l.startsWith('reverse_listener ')))) {
    const line = await ctl.nextLine();
    if (line === null) break;
    got.push(line);
  }
  const tokenLine = got.find((l) => l.startsWith('reverse_token ')) ?? 'reverse_token (none was sent)';
  const reversePort = relay.firstPort + 1;
  t.true(got.includes(`reverse_listener 127.0.0.1:${reversePort}`));

  const client = track(t, await dialRelay({ address: LOCALHOST, port: relay.firstPort }, cert.pem));
  const secretBytes = Buffer.from('the client\'s private bytes');
  client.write(secretBytes);
  t.is(await ctl.nextLine(), 'new_connection');

  // a stranger from another address, even with the right token line
  const strangers = [
    ['from another address, with the token line', OTHER_HOST, `${tokenLine}\r\n`],
    ['from the owner\'s address, without a token line', LOCALHOST, undefined],
    ['from the owner\'s address, with a wrong token', LOCALHOST, `reverse_token ${'0'.repeat(32)}\r\n`],
  ] as const;
  for (const [who, from, first] of strangers) {
    const r = await strangerReads(t, reversePort, cert.pem, from, first);
    t.is(r.bytes.toString('latin1'), '', `a stranger ${who} received the client's bytes`);
    t.true(r.closed, `a stranger ${who} is closed by the relay`);
  }
  await relay.waitLog(/reverse connection 127\.0\.0\.2:\d+ on port \d+: not from the pair's server/);
  t.regex(tokenLine, /^reverse_token [0-9a-f]{32}$/, `the owner is told its allocation's token before its listener lines: ${got.join(' | ')}`);

  // the owner connects back with its token and gets the client's bytes, and the session works both ways
  const rev = track(t, tls.connect({ host: LOCALHOST, port: reversePort, ca: cert.pem }));
  await new Promise((resolve) => rev.once('secureConnect', resolve));
  rev.write(`${tokenLine}\r\nhello from the server`);
  t.true((await readBytes(rev, secretBytes.length)).equals(secretBytes));
  t.is((await readBytes(client, 21)).toString('latin1'), 'hello from the server', 'bytes sent right after the token line reach the client');
  await relay.waitLog(/splice established: session 1 on pair 0/);
});

test('a client and a server talk through the relay: 100 KB up and 60 KB back, byte-exact', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 2);
  const c = collector(1);
  const lis = await listen(t, relay, cert.pem, c.onConnection);
  t.is(lis.publicListener.address, LOCALHOST);
  t.is(lis.publicListener.port, relay.firstPort, 'the first pair is assigned first');
  t.deepEqual(lis.reverse, { address: LOCALHOST, port: relay.firstPort + 1 });

  const client = track(t, await dialRelay(lis.publicListener, cert.pem));
  const up = randomBytes(100 * 1024);
  client.write(up); // sent before the server has even connected: the relay buffers it
  const [server] = await c.sockets;
  track(t, server!);
  const gotUp = await readBytes(server!, up.length);
  t.true(gotUp.equals(up), 'client→server payload intact');

  const down = randomBytes(60 * 1024);
  server!.write(down);
  const gotDown = await readBytes(client, down.length);
  t.true(gotDown.equals(down), 'server→client payload intact');

  await relay.waitLog(/\[relay\] splice established: session 1 on pair 0/);
  client.end();
  await relay.waitLog(/session 1 closed after \d+ ms: client->server 102400 bytes, server->client 61440 bytes/);
  t.regex(relay.stderr(), /^\d{4}-\d\d-\d\dT[\d:.]+Z \[relay\] control connection from 127\.0\.0\.1:\d+$/m);
  t.regex(relay.stderr(), /client 127\.0\.0\.1:\d+ queued on pair 0/);
  t.regex(relay.stderr(), /new_connection sent to server 127\.0\.0\.1:\d+ \(pair 0\)/);
});

test('pool exhaustion: a second server gets no_available_listeners until the first one leaves', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 1);
  const first = await openRelayListener({ relay: relay.control, ca: cert.pem, secret: relay.secret, onConnection: (s) => s.destroy() });
  const err = await t.throwsAsync(openRelayListener({ relay: relay.control, ca: cert.pem, secret: relay.secret, onConnection: (s) => s.destroy() }));
  t.regex(err?.message ?? '', /no_available_listeners/);
  await relay.waitLog(/no_available_listeners for 127\.0\.0\.1:\d+ \(all 1 pair\(s\) assigned\)/);

  first.close();
  await relay.waitLog(/pair 0 released \(control connection closed/);
  const again = await listen(t, relay, cert.pem);
  t.deepEqual(again.publicListener, first.publicListener, 'the released pair is handed out again');
});

test('a client that does not trust the relay certificate is rejected', async (t) => {
  const cert = await makeCert(t);
  const other = await makeCert(t);
  const relay = await startRelay(t, cert, 1);
  const lis = await listen(t, relay, cert.pem);
  const err = await t.throwsAsync(dialRelay(lis.publicListener, other.pem));
  t.regex(err?.message ?? '', /relay public listener 127\.0\.0\.1:\d+: .*(self[- ]signed|unable to verify|certificate)/i);
  // nor does a server: the control connection is refused the same way
  await t.throwsAsync(openRelayListener({ relay: relay.control, ca: other.pem, secret: relay.secret, onConnection: () => {} }), { message: /certificate/i });
  await relay.waitLog(/TLS handshake from 127\.0\.0\.1:\d+ failed/);
  // and the relay is still serving
  const ok = track(t, await dialRelay(lis.publicListener, cert.pem));
  t.false(ok.destroyed);
});

test('a connection to an unassigned public port is closed without data', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 2);
  await listen(t, relay, cert.pem); // takes pair 0; pair 1 stays unassigned
  const unassigned = relay.firstPort + 2;
  const raw = track(t, net.connect(unassigned, LOCALHOST));
  const got = await readToClose(raw, 3000);
  t.is(got.length, 0);
  await relay.waitLog(new RegExp(`client 127\\.0\\.0\\.1:\\d+ on unassigned public port ${unassigned}: dropped`));
  // over TLS too: the handshake never completes
  await t.throwsAsync(dialRelay({ address: LOCALHOST, port: unassigned }, cert.pem));
  // a reverse connection with no client queued is dropped the same way
  const rev = track(t, net.connect(relay.firstPort + 1, LOCALHOST));
  t.is((await readToClose(rev, 3000)).length, 0);
  await relay.waitLog(/reverse connection 127\.0\.0\.1:\d+ on port \d+: no client queued, dropped/);
});

test('bad environment: missing NMX_RELAY_CERT → exit 2 and one stderr line naming it', async (t) => {
  const cert = await makeCert(t);
  const first = await freePortRange(2);
  const res = await spawnRelay(t, {
    NMX_LISTEN: `${LOCALHOST}:0`,
    NMX_RELAY_KEY: cert.keyFile,
    NMX_RELAY_PORTS: `${first}-${first + 1}`,
  });
  t.is(res.exitCode, 2, res.stderr);
  t.is(res.stdout, '');
  const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
  t.is(lines.length, 1, res.stderr);
  t.regex(lines[0]!, /\[relay\] bad environment: NMX_RELAY_CERT is not set/);
});

test('bad environment: an odd number of pool ports → exit 2 naming NMX_RELAY_PORTS', async (t) => {
  const cert = await makeCert(t);
  const res = await spawnRelay(t, {
    NMX_LISTEN: `${LOCALHOST}:0`,
    NMX_RELAY_CERT: cert.certFile,
    NMX_RELAY_KEY: cert.keyFile,
    NMX_RELAY_PORTS: '40000-40002',
  });
  t.is(res.exitCode, 2, res.stderr);
  t.regex(res.stderr.trim(), /^[^\n]*NMX_RELAY_PORTS is 40000-40002: 3 ports, the count must be even[^\n]*$/);
});

test('bad environment: a missing or short NMX_RELAY_SECRET → exit 2 naming it', async (t) => {
  const cert = await makeCert(t);
  const first = await freePortRange(2);
  const env = { NMX_LISTEN: `${LOCALHOST}:0`, NMX_RELAY_CERT: cert.certFile, NMX_RELAY_KEY: cert.keyFile, NMX_RELAY_PORTS: `${first}-${first + 1}` };
  const missing = await spawnRelay(t, env);
  t.is(missing.exitCode, 2, missing.stderr);
  t.is(missing.stdout, '');
  t.regex(missing.stderr.trim(), /^[^\n]*\[relay\] bad environment: NMX_RELAY_SECRET is not set[^\n]*$/);
  const short = await spawnRelay(t, { ...env, NMX_RELAY_SECRET: 'abc' });
  t.is(short.exitCode, 2, short.stderr);
  t.regex(short.stderr.trim(), /^[^\n]*NMX_RELAY_SECRET is 3 character\(s\) long[^\n]*$/);
});

test('a pool port already taken → exit 1 with a stderr line, no ready line', async (t) => {
  const cert = await makeCert(t);
  const first = await freePortRange(4);
  const blocker = await canListen(first + 3);
  t.truthy(blocker);
  t.teardown(() => new Promise<void>((resolve) => blocker!.close(() => resolve())));
  const res = await spawnRelay(t, {
    NMX_LISTEN: `${LOCALHOST}:0`,
    NMX_RELAY_CERT: cert.certFile,
    NMX_RELAY_KEY: cert.keyFile,
    NMX_RELAY_PORTS: `${first}-${first + 3}`,
    NMX_RELAY_SECRET: randomBytes(16).toString('hex'),
  });
  t.is(res.exitCode, 1, res.stderr);
  t.is(res.stdout, '');
  t.regex(res.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first + 3} \\(reverse port of pair 1\\)`));
});

test('two clients in a row through one listener each get their own session', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 1);
  const servers: tls.TLSSocket[] = [];
  const lis = await listen(t, relay, cert.pem, (s) => {
    servers.push(track(t, s));
    invertingEcho(s);
  });
  for (const [i, fill] of [[1, 0x41], [2, 0x42]] as const) {
    const client = track(t, await dialRelay(lis.publicListener, cert.pem));
    const payload = Buffer.concat([Buffer.alloc(20_000, fill), randomBytes(20_000)]);
    client.write(payload);
    const back = await readBytes(client, payload.length);
    t.true(back.equals(inverted(payload)), `client ${i} got exactly its own bytes back`);
    client.end();
    await relay.waitLog(new RegExp(`session ${i} closed after \\d+ ms: client->server 40000 bytes, server->client 40000 bytes`));
  }
  t.is(servers.length, 2, 'one reverse connection per client');
  t.not(servers[0], servers[1]);
});

test('three clients at once are spliced to three separate reverse connections', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 1);
  const lis = await listen(t, relay, cert.pem, (s) => {
    track(t, s);
    invertingEcho(s);
  });
  const clients = await Promise.all([0, 1, 2].map(() => dialRelay(lis.publicListener, cert.pem).then((c) => track(t, c))));
  const payloads = clients.map((_, i) => Buffer.concat([Buffer.from(`client-${i}:`), randomBytes(30_000)]));
  clients.forEach((c, i) => c.write(payloads[i]!));
  const backs = await Promise.all(clients.map((c, i) => readBytes(c, payloads[i]!.length)));
  backs.forEach((b, i) => t.true(b.equals(inverted(payloads[i]!)), `client ${i} got its own bytes`));
  await relay.waitLog(/session 3 on pair 0/);
});

test('the relay survives junk: non-TLS bytes on the control port and an overlong control line', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 1);
  const junk = track(t, net.connect(relay.control.port, LOCALHOST));
  junk.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await readToClose(junk, 5000);
  await relay.waitLog(/control port: TLS handshake from 127\.0\.0\.1:\d+ failed/);

  // a server that floods its control connection without a line end loses its pair
  const flooder = (await rawControl(t, relay, cert.pem)).sock;
  await relay.waitLog(/assigned pair 0/);
  flooder.write('x'.repeat(10_000));
  await relay.waitLog(/sent more than 4096 bytes without a line end, dropped/);
  await relay.waitLog(/pair 0 released/);

  // the released pair serves the next server
  const lis = await listen(t, relay, cert.pem, invertingEcho);
  t.is(lis.publicListener.port, relay.firstPort);
  const client = track(t, await dialRelay(lis.publicListener, cert.pem));
  client.write('ping');
  t.true((await readBytes(client, 4)).equals(inverted(Buffer.from('ping'))));
  t.is(relay.child.exitCode, null, 'relay still running');
});

test('a queued client nobody picks up is dropped after 10 s; SIGTERM exits 0', async (t) => {
  const cert = await makeCert(t);
  const relay = await startRelay(t, cert, 1);
  // a "server" that never answers new_connection
  const ctl = track(t, tls.connect({ host: LOCALHOST, port: relay.control.port, ca: cert.pem }));
  ctl.setEncoding('latin1');
  let lines = '';
  ctl.on('data', (s: string) => (lines += s));
  ctl.write(`auth ${relay.secret}\r\n`);
  await relay.waitLog(/assigned pair 0/);
  ctl.write('hello relay\r\n'); // lines from a server are logged and ignored
  await relay.waitLog(/control line from 127\.0\.0\.1:\d+ ignored: "hello relay"/);
  const client = track(t, await dialRelay({ address: LOCALHOST, port: relay.firstPort }, cert.pem));
  client.write('hello?');
  const started = Date.now();
  const got = await readToClose(client, 15_000);
  const waited = Date.now() - started;
  t.is(got.length, 0);
  t.true(waited >= 9000 && waited < 13_000, `dropped after ${waited} ms`);
  t.regex(relay.stderr(), /not paired within 10000 ms, dropped/);
  t.regex(lines, new RegExp(`^reverse_token [0-9a-f]{32}\r\npublic_listener 127\\.0\\.0\\.1:${relay.firstPort}\r\nreverse_listener 127\\.0\\.0\\.1:${relay.firstPort + 1}\r\nnew_connection\r\n$`));

  process.kill(relay.child.pid!, 'SIGTERM');
  const res = await relay.child;
  t.is(res.exitCode, 0, res.stderr);
  t.regex(res.stderr, /SIGTERM: closing/);
});
