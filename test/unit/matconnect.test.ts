// Tests of the matconnect agent (agents/matconnect/peer.ts): the header codec, and the real agent
// processes on loopback (no root, no namespaces). Without NAT the plain path works; a forwarder in
// this process that drops the server's replies (like the client's NAT gateway) forces step 2.
// Every child process is ended by its PID in t.teardown.

import test, { type ExecutionContext } from 'ava';
import dgram from 'node:dgram';
import { type Child, freePort, type Res, spawnAgent as spawn } from './agent-process.ts';
import { type Message, sign, verify } from '../../agents/sdk/index.ts';
import { decodeHeader, encodeHeader, HEADER_BYTES, readMatconnectConfig, signedEndpoint, splitDatagram } from '../../agents/matconnect/peer.ts';

const PEER = 'agents/matconnect/peer.ts';
const SECRET = 'test-secret-matconnect-0123';

// ------------------------------------------------------------------------------------------------
// Helpers

const msg = (over: Partial<Message> = {}): Message => ({ t: 'ping', s: 'mc', r: 'a', ts: Date.now(), n: 1, ...over });

const spawnAgent = (t: ExecutionContext, env: Record<string, string>): Child => spawn(t, PEER, env);

interface PeerOpts {
  role: 'a' | 'b';
  session: string;
  localPort: number;
  /** port of NMX_PEER_PUBLIC on 127.0.0.1 */
  peerPort: number;
  secret?: string;
  timeoutMs?: number;
  waitMs?: number;
}

function peerEnv(o: PeerOpts): Record<string, string> {
  return {
    NMX_ROLE: o.role,
    NMX_SESSION: o.session,
    NMX_RENDEZVOUS: '127.0.0.1:9', // required by readPeerConfig, unused by matconnect
    NMX_SECRET: o.secret ?? SECRET,
    NMX_LOCAL_PORT: String(o.localPort),
    NMX_TIMEOUT_MS: String(o.timeoutMs ?? 1000),
    NMX_WAIT_MS: String(o.waitMs ?? 3000),
    NMX_PUBLIC_IP: '127.0.0.1',
    NMX_PEER_PUBLIC: `127.0.0.1:${o.peerPort}`,
  };
}

const startPeer = (t: ExecutionContext, o: PeerOpts): Child => spawnAgent(t, peerEnv(o));

/** Resolve once a stderr line of the child matches re (or reject after ms / at end of stream). */
function stderrLine(child: Child, re: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stderr.off('data', onData);
      child.stderr.off('end', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        cleanup();
        resolve(line);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`stderr ended without ${re}: ${buf}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no stderr line ${re} within ${ms} ms: ${buf}`));
    }, ms);
    child.stderr.on('data', onData);
    child.stderr.once('end', onEnd);
  });
}

/**
 * Start the server (role b) and wait until its socket is bound. The child comes back wrapped: a
 * ResultPromise is a thenable, so an async function returning it bare would wait for the exit.
 */
async function startServer(t: ExecutionContext, o: Omit<PeerOpts, 'role'>): Promise<{ child: Child }> {
  const child = startPeer(t, { ...o, role: 'b' });
  await stderrLine(child, /\[b\] bound 0\.0\.0\.0:/, 8000);
  return { child };
}

interface Step {
  path: string;
  ok: boolean;
  ms: number;
}

interface Verdict {
  ok: boolean;
  path: string | null;
  peer: string | null;
  timeToDirectMs?: number;
  reason?: string;
  steps: Step[];
  replyTo?: string;
}

/** The agent's stdout must be exactly one JSON line. */
function verdictOf(t: ExecutionContext, res: Res): Verdict {
  const lines = res.stdout.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, `exactly one stdout line, got ${JSON.stringify(res.stdout)}; stderr:\n${res.stderr}`);
  return JSON.parse(lines[0] ?? 'null') as Verdict;
}

/** A test-side UDP socket on 127.0.0.1, closed at teardown. */
async function udpSocket(t: ExecutionContext, port = 0): Promise<dgram.Socket & { port: number }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve());
  });
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return Object.assign(s, { port: s.address().port });
}

function sendTo(s: dgram.Socket, data: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => s.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

/**
 * A stand-in for the client's NAT gateway: forwards what the client sends to the server (from its own
 * port, like SNAT) and drops whatever comes back (the reply arrives from an address it does not admit).
 * With `dropAll` it forwards nothing either: the server is not where the client sends.
 */
async function forwarder(t: ExecutionContext, serverPort: number, dropAll = false) {
  const s = await udpSocket(t);
  const counts = { forwarded: 0, droppedReplies: 0, droppedAll: 0 };
  s.on('message', (buf, rinfo) => {
    if (dropAll) counts.droppedAll++;
    else if (rinfo.port === serverPort) counts.droppedReplies++;
    else {
      counts.forwarded++;
      s.send(buf, serverPort, '127.0.0.1');
    }
  });
  return { port: s.port, counts };
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------
// Pure tests

test('header codec round trip: IPv4 + big-endian port in 6 bytes', (t) => {
  const h = encodeHeader({ address: '1.2.3.4', port: 49152 });
  t.is(h.length, HEADER_BYTES);
  t.deepEqual([...h], [1, 2, 3, 4, 0xc0, 0x00]);
  t.deepEqual(decodeHeader(h), { address: '1.2.3.4', port: 49152 });
  for (const ep of [
    { address: '203.0.113.22', port: 1 },
    { address: '127.0.0.1', port: 65535 },
    { address: '9.8.7.6', port: 8080 },
    { address: '223.255.255.254', port: 0x0102 },
  ]) {
    t.deepEqual(decodeHeader(encodeHeader(ep)), ep);
  }
  // a header inside a larger buffer (a subarray) decodes from its own offset
  const big = Buffer.concat([Buffer.from('xx'), encodeHeader({ address: '10.1.2.3', port: 40000 })]);
  t.deepEqual(decodeHeader(big.subarray(2)), { address: '10.1.2.3', port: 40000 });
});

test('decodeHeader rejects wrong lengths and unusable reply addresses; encodeHeader rejects bad endpoints', (t) => {
  for (const len of [0, 1, 5, 7, 70]) t.throws(() => decodeHeader(Buffer.alloc(len, 1)), { message: /expected 6/ }, `length ${len}`);
  t.throws(() => decodeHeader(Buffer.from([1, 2, 3, 4, 0, 0])), { message: /port 0/ });
  t.throws(() => decodeHeader(Buffer.from([0, 0, 0, 0, 0x1f, 0x90])), { message: /0\.0\.0\.0\/8/ });
  t.throws(() => decodeHeader(Buffer.from([255, 255, 255, 255, 0x1f, 0x90])), { message: /broadcast/ });
  t.throws(() => decodeHeader(Buffer.from([239, 1, 2, 3, 0x1f, 0x90])), { message: /multicast/ });
  t.throws(() => encodeHeader({ address: '1.2.3.4', port: 0 }));
  t.throws(() => encodeHeader({ address: '1.2.3.4', port: 70000 }));
  t.throws(() => encodeHeader({ address: 'localhost', port: 80 }));
  t.throws(() => encodeHeader({ address: '0.0.0.0', port: 80 }));
});

test('splitDatagram tells headered from plain signed datagrams', (t) => {
  const replyTo = { address: '1.2.3.4', port: 49152 };
  const signed = sign(msg({ ep: '1.2.3.4:49152' }), SECRET);

  const headered = splitDatagram(Buffer.concat([encodeHeader(replyTo), signed]));
  t.deepEqual(headered.replyTo, replyTo);
  t.true(headered.body.equals(signed));
  t.is(headered.headerError, undefined);
  t.true(verify(headered.body, SECRET).ok);
  t.deepEqual(signedEndpoint(headered.body), replyTo);

  const plain = splitDatagram(signed);
  t.is(plain.replyTo, null);
  t.true(plain.body.equals(signed));
  t.is(signedEndpoint(sign(msg(), SECRET)), null, 'a plain message carries no ep');

  // a header made only of hex-digit bytes ("0123" = 48.49.50.51, port "01" = 0x3031) is still a header
  const hexish = { address: '48.49.50.51', port: 0x3031 };
  const h2 = splitDatagram(Buffer.concat([encodeHeader(hexish), signed]));
  t.deepEqual(h2.replyTo, hexish);
  t.true(h2.body.equals(signed));

  // headered shape with an unusable header: flagged, never a reply address
  const bad = splitDatagram(Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0]), signed]));
  t.is(bad.replyTo, null);
  t.regex(bad.headerError ?? '', /0\.0\.0\.0/);

  // junk and short datagrams are plain (verify drops them)
  for (const junk of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(100, 0x41), signed.subarray(0, 70)]) {
    const j = splitDatagram(junk);
    t.is(j.replyTo, null);
    t.true(j.body.equals(junk));
  }
});

test('readMatconnectConfig adds NMX_PUBLIC_IP and NMX_PEER_PUBLIC to the peer config', (t) => {
  const env = peerEnv({ role: 'a', session: 's', localPort: 40000, peerPort: 8080 });
  const cfg = readMatconnectConfig(env);
  t.is(cfg.publicIp, '127.0.0.1');
  t.deepEqual(cfg.peerPublic, { address: '127.0.0.1', port: 8080 });
  t.is(cfg.role, 'a');
  const variableOf = (e: Record<string, string | undefined>): string =>
    (t.throws(() => readMatconnectConfig(e)) as Error & { variable?: string }).variable ?? '';
  t.is(variableOf({ ...env, NMX_PUBLIC_IP: undefined }), 'NMX_PUBLIC_IP');
  t.is(variableOf({ ...env, NMX_PUBLIC_IP: '1.2.3' }), 'NMX_PUBLIC_IP');
  t.is(variableOf({ ...env, NMX_PUBLIC_IP: '0.0.0.0' }), 'NMX_PUBLIC_IP');
  t.is(variableOf({ ...env, NMX_PEER_PUBLIC: undefined }), 'NMX_PEER_PUBLIC');
  t.is(variableOf({ ...env, NMX_PEER_PUBLIC: 'server:8080' }), 'NMX_PEER_PUBLIC');
});

// ------------------------------------------------------------------------------------------------
// Real agent processes on loopback. Serial: each spawns tsx processes, and the machine may have few CPUs.

test.serial('without NAT the plain path works: both exit 0 with path plain-udp', async (t) => {
  const [pa, pb] = [await freePort(), await freePort()];
  const { child: b } = await startServer(t, { session: 'mc-plain', localPort: pb, peerPort: pa });
  const a = startPeer(t, { role: 'a', session: 'mc-plain', localPort: pa, peerPort: pb });
  const [ra, rb] = await Promise.all([a, b]);
  for (const [res, otherPort] of [[ra, pb], [rb, pa]] as const) {
    t.is(res.exitCode, 0, res.stderr);
    const v = verdictOf(t, res);
    t.true(v.ok);
    t.is(v.path, 'plain-udp');
    t.is(v.peer, `127.0.0.1:${otherPort}`);
    t.is(typeof v.timeToDirectMs, 'number');
    t.true(v.timeToDirectMs! >= 0 && v.timeToDirectMs! < 1000, `timeToDirectMs ${v.timeToDirectMs}`);
    t.deepEqual(v.steps.map((s) => [s.path, s.ok]), [['plain-udp', true]], 'step 2 never ran');
    t.regex(res.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z \[[ab]\] /m, 'stderr lines carry timestamp and role');
    t.regex(res.stderr, /\] exit 0: pings sent \d+\/recv \d+, pongs sent/, 'stats line at exit');
  }
  t.regex(rb.stderr, /answering pong to the source/);
});

test.serial('replies dropped on the way back (like the NAT gateway): matconnect rescues the connection', async (t) => {
  const [pa, pb] = [await freePort(), await freePort()];
  const fwd = await forwarder(t, pb);
  const { child: b } = await startServer(t, { session: 'mc-gw', localPort: pb, peerPort: pa });
  const a = startPeer(t, { role: 'a', session: 'mc-gw', localPort: pa, peerPort: fwd.port, timeoutMs: 400 });
  const [ra, rb] = await Promise.all([a, b]);
  t.is(ra.exitCode, 0, ra.stderr);
  t.is(rb.exitCode, 0, rb.stderr);
  const va = verdictOf(t, ra);
  const vb = verdictOf(t, rb);
  for (const v of [va, vb]) {
    t.true(v.ok);
    t.is(v.path, 'matconnect');
    t.deepEqual(v.steps.map((s) => [s.path, s.ok]), [['plain-udp', false], ['matconnect', true]]);
    for (const s of v.steps) t.true(typeof s.ms === 'number' && s.ms >= 0);
  }
  // the client's pong came straight from the server (to the header address), not through the gateway
  t.is(va.peer, `127.0.0.1:${pb}`);
  t.true(va.timeToDirectMs! >= 380, `timeToDirectMs ${va.timeToDirectMs} counts from the start of step 1`);
  t.true(va.steps[0]!.ms >= 380, 'step 1 ran its full window (timers may fire a millisecond early)');
  // the server saw the client's datagrams from the gateway's address, and replied to the header's
  t.is(vb.peer, `127.0.0.1:${fwd.port}`);
  t.is(vb.replyTo, `127.0.0.1:${pa}`);
  t.true(fwd.counts.forwarded > 0);
  t.true(fwd.counts.droppedReplies > 0, 'plain pongs went back to the source and were dropped');
  t.regex(ra.stderr, /step change: plain-udp: sent \d+ pings .* received 0 pongs; switching to matconnect/);
  t.regex(rb.stderr, /answering headered pong to the header address 127\.0\.0\.1:\d+/);
});

test.serial('a forged headered datagram makes the server send nothing to the header address', async (t) => {
  const [pb, dead] = [await freePort(), await freePort()];
  const { child: b } = await startServer(t, { session: 'mc-forged', localPort: pb, peerPort: dead });
  const victim = await udpSocket(t);
  const received: Buffer[] = [];
  victim.on('message', (buf) => received.push(buf));
  const attacker = await udpSocket(t);
  const victimEp = { address: '127.0.0.1', port: victim.port };
  const head = encodeHeader(victimEp);
  const ep = `127.0.0.1:${victim.port}`;

  // wrong secret
  await sendTo(attacker, Buffer.concat([head, sign(msg({ s: 'mc-forged', ep }), 'not-the-secret')]), pb);
  // unsigned junk with a header in front
  await sendTo(attacker, Buffer.concat([head, Buffer.from('a'.repeat(64) + '.{"t":"ping"}')]), pb);
  // a genuine signed ping (e.g. captured) whose header was rewritten to aim at the victim
  await sendTo(attacker, Buffer.concat([head, sign(msg({ s: 'mc-forged', n: 2, ep: `127.0.0.1:${dead}` }), SECRET)]), pb);
  // right secret, other session
  await sendTo(attacker, Buffer.concat([head, sign(msg({ s: 'other-session', n: 3, ep }), SECRET)]), pb);
  await delay(300);
  t.is(received.length, 0, 'nothing reached the header address');

  // control: a genuine headered ping is answered there, so the silence above means something
  await sendTo(attacker, Buffer.concat([head, sign(msg({ s: 'mc-forged', n: 4, ep }), SECRET)]), pb);
  for (let waited = 0; received.length === 0 && waited < 3000; waited += 20) await delay(20);
  await delay(100); // and nothing more arrives
  t.is(received.length, 1);
  const answer = splitDatagram(received[0]!);
  t.deepEqual(answer.replyTo, { address: '127.0.0.1', port: pb }, 'the pong carries the server header');
  const v = verify(answer.body, SECRET);
  t.true(v.ok && v.msg.t === 'pong' && v.msg.r === 'b');

  process.kill(b.pid!, 'SIGTERM');
  const res = await b;
  t.is(res.exitCode, 143);
  t.is(res.stdout, '');
  t.regex(res.stderr, /drop \d+ B from 127\.0\.0\.1:\d+: headered \(reply to 127\.0\.0\.1:\d+\) bad signature; not answering the header address/);
  const refused = res.stderr.split('\n').filter((l) => / drop \d+ B from 127\.0\.0\.1:\d+: headered .*not answering/.test(l));
  t.is(refused.length, 4, `one drop line per forged datagram:\n${res.stderr}`);
  t.regex(res.stderr, /drop .*header does not match the signed ep/);
  t.regex(res.stderr, /drop .*wrong session "other-session"/);
});

test.serial('both fail cleanly when nothing reaches the server; reasons name both steps', async (t) => {
  const [pa, pb] = [await freePort(), await freePort()];
  const fwd = await forwarder(t, pb, true);
  const { child: b } = await startServer(t, { session: 'mc-none', localPort: pb, peerPort: pa, timeoutMs: 300, waitMs: 300 });
  const a = startPeer(t, { role: 'a', session: 'mc-none', localPort: pa, peerPort: fwd.port, timeoutMs: 300, waitMs: 300 });
  const [ra, rb] = await Promise.all([a, b]);
  t.true(fwd.counts.droppedAll > 0);
  const va = verdictOf(t, ra);
  const vb = verdictOf(t, rb);
  for (const [res, v] of [[ra, va], [rb, vb]] as const) {
    t.is(res.exitCode, 1, res.stderr);
    t.deepEqual({ ok: v.ok, path: v.path, peer: v.peer }, { ok: false, path: null, peer: null });
    t.regex(v.reason ?? '', /plain-udp: .*matconnect: /);
  }
  t.regex(va.reason ?? '', new RegExp(`^no pong in either step \\(plain-udp: sent [1-9]\\d* pings to 127\\.0\\.0\\.1:${fwd.port} in [\\d.]+ ms, received 0 pongs; matconnect: sent [1-9]\\d* headered pings \\(replies asked at 127\\.0\\.0\\.1:${pa}\\)`));
  t.deepEqual(va.steps.map((s) => [s.path, s.ok]), [['plain-udp', false], ['matconnect', false]]);
  t.regex(vb.reason ?? '', /^no verified close from a within 900 ms \(plain-udp: received 0 pings, sent 0 pongs .*; matconnect: received 0 headered pings/);
  t.deepEqual(vb.steps, []);
});

test.serial('bind failure: exit 3 with the reason', async (t) => {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '0.0.0.0', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  const res = await startPeer(t, { role: 'a', session: 'mc-bind', localPort: s.address().port, peerPort: 9 });
  t.is(res.exitCode, 3, res.stderr);
  const v = verdictOf(t, res);
  t.false(v.ok);
  t.regex(v.reason ?? '', /^cannot bind UDP 0\.0\.0\.0:\d+: .*EADDRINUSE/);
});

test.serial('missing NMX_PUBLIC_IP: exit 2 with one stderr line naming it', async (t) => {
  const env = peerEnv({ role: 'a', session: 's', localPort: await freePort(), peerPort: 9 });
  delete (env as Record<string, string | undefined>).NMX_PUBLIC_IP;
  const res = await spawnAgent(t, env);
  t.is(res.exitCode, 2);
  t.is(res.stdout, '');
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, res.stderr);
  t.regex(lines[0] ?? '', /bad environment: NMX_PUBLIC_IP is not set/);

  const bad = await spawnAgent(t, { ...env, NMX_PUBLIC_IP: '127.0.0.1', NMX_PEER_PUBLIC: 'server' });
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /NMX_PEER_PUBLIC/);
});
