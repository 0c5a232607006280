// Tests of the netpunch agents (agents/udp-punch): the real agent processes on loopback (no root, no
// namespaces). Every child process is ended by its PID in t.teardown. The wire format, endpoints and
// environment reading they use are the SDK's (agents/sdk), tested in sdk.test.ts.

import test, { type ExecutionContext } from 'ava';
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { type Child, freePort, type Res, spawnAgent } from './agent-process.ts';
import { type Message, parseEndpoint, sign, verify } from '../../agents/sdk/index.ts';

const PEER = 'agents/udp-punch/peer.ts';
const RDV = 'agents/udp-punch/rendezvous.ts';
const SECRET = 'test-secret-0123456789';

// ------------------------------------------------------------------------------------------------
// Helpers

const msg = (over: Partial<Message> = {}): Message => ({ t: 'ping', s: 'sess-1', r: 'a', ts: Date.now(), n: 1, ...over });

/** Independent implementation of the wire format, to sign arbitrary bytes. */
function rawSign(json: string, secret = SECRET): Buffer {
  const sig = createHmac('sha256', secret).update(json).digest('hex');
  return Buffer.from(`${sig}.${json}`, 'utf8');
}

/** Resolve with the first stdout line of a child (or reject after ms / on end of stream). */
function firstLine(child: Child, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no stdout line within ${ms} ms`)), ms);
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      }
    });
    child.stdout.once('end', () => {
      clearTimeout(timer);
      reject(new Error(`stdout ended before a line: ${JSON.stringify(buf)}`));
    });
  });
}

async function startRendezvous(t: ExecutionContext): Promise<{ child: Child; port: number }> {
  const child = spawnAgent(t, RDV, { NMX_LISTEN: '127.0.0.1:0', NMX_SECRET: SECRET });
  const line = await firstLine(child, 5000);
  const ready = JSON.parse(line) as { ready: boolean; listen: string };
  t.true(ready.ready);
  const ep = parseEndpoint(ready.listen);
  t.is(ep.address, '127.0.0.1');
  return { child, port: ep.port };
}

async function stopRendezvous(t: ExecutionContext, child: Child): Promise<Res> {
  t.is(child.exitCode, null, 'rendezvous still running');
  process.kill(child.pid!, 'SIGTERM');
  const res = await child;
  t.is(res.exitCode, 0, `rendezvous exit code (stderr: ${res.stderr})`);
  return res;
}

interface PeerOpts {
  role: 'a' | 'b';
  session: string;
  rdvPort: number;
  localPort: number;
  secret?: string;
  timeoutMs?: number;
  waitMs?: number;
}

function startPeer(t: ExecutionContext, o: PeerOpts): Child {
  return spawnAgent(t, PEER, {
    NMX_ROLE: o.role,
    NMX_SESSION: o.session,
    NMX_RENDEZVOUS: `127.0.0.1:${o.rdvPort}`,
    NMX_SECRET: o.secret ?? SECRET,
    NMX_LOCAL_PORT: String(o.localPort),
    NMX_TIMEOUT_MS: String(o.timeoutMs ?? 1000),
    NMX_WAIT_MS: String(o.waitMs ?? 3000),
  });
}

interface Verdict {
  ok: boolean;
  path: string | null;
  peer: string | null;
  timeToDirectMs?: number;
  reason?: string;
}

/** The peer's stdout must be exactly one JSON line. */
function verdictOf(t: ExecutionContext, res: Res): Verdict {
  const lines = res.stdout.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, `exactly one stdout line, got ${JSON.stringify(res.stdout)}; stderr:\n${res.stderr}`);
  return JSON.parse(lines[0] ?? 'null') as Verdict;
}

/** A test-side UDP socket, closed at teardown. */
async function udpSocket(t: ExecutionContext): Promise<dgram.Socket & { port: number }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return Object.assign(s, { port: s.address().port });
}

function sendTo(s: dgram.Socket, data: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => s.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

/** Next datagram on s that verifies with SECRET (others are skipped), or reject after ms. */
function nextMessage(s: dgram.Socket, ms: number, filter: (m: Message) => boolean = () => true): Promise<{ m: Message; from: number }> {
  return new Promise((resolve, reject) => {
    const onMsg = (buf: Buffer, rinfo: dgram.RemoteInfo): void => {
      const res = verify(buf, SECRET);
      if (res.ok && filter(res.msg)) {
        cleanup();
        resolve({ m: res.msg, from: rinfo.port });
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no matching message within ${ms} ms`));
    }, ms);
    const cleanup = (): void => {
      clearTimeout(timer);
      s.off('message', onMsg);
    };
    s.on('message', onMsg);
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------
// Real agent processes on loopback. Serial: each spawns several tsx processes, and the machine
// may have few CPUs.

test.serial('two peers of one session punch through the rendezvous', async (t) => {
  const { child: rdv, port } = await startRendezvous(t);
  const [pa, pb] = [await freePort(), await freePort()];
  const a = startPeer(t, { role: 'a', session: 'pair-ok', rdvPort: port, localPort: pa });
  const b = startPeer(t, { role: 'b', session: 'pair-ok', rdvPort: port, localPort: pb });
  const [ra, rb] = await Promise.all([a, b]);
  for (const [res, otherPort] of [[ra, pb], [rb, pa]] as const) {
    t.is(res.exitCode, 0, res.stderr);
    const v = verdictOf(t, res);
    t.true(v.ok);
    t.is(v.path, 'direct-udp');
    t.is(v.peer, `127.0.0.1:${otherPort}`);
    t.is(typeof v.timeToDirectMs, 'number');
    t.true(v.timeToDirectMs! >= 0 && v.timeToDirectMs! < 1000, `timeToDirectMs ${v.timeToDirectMs}`);
    t.is(v.timeToDirectMs, Math.round(v.timeToDirectMs! * 10) / 10, 'one decimal');
    t.regex(res.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z \[[ab]\] /m, 'stderr lines carry timestamp and role');
  }
  const r = await stopRendezvous(t, rdv);
  t.regex(r.stderr, /\[pair-ok\] accept reg #\d+ from a/);
  t.regex(r.stderr, /\[pair-ok\] push: telling/);
});

test.serial('a peer whose partner never comes gives up after NMX_WAIT_MS', async (t) => {
  const { child: rdv, port } = await startRendezvous(t);
  const started = Date.now();
  const res = await startPeer(t, { role: 'a', session: 'lonely', rdvPort: port, localPort: await freePort(), waitMs: 300 });
  t.is(res.exitCode, 1, res.stderr);
  const v = verdictOf(t, res);
  t.deepEqual({ ok: v.ok, path: v.path, peer: v.peer }, { ok: false, path: null, peer: null });
  t.regex(v.reason ?? '', new RegExp(`not paired by rendezvous 127\\.0\\.0\\.1:${port} within 300 ms \\(sent [1-9]\\d* registrations`));
  t.true(Date.now() - started < 2500);
  const r = await stopRendezvous(t, rdv);
  t.regex(r.stderr, /\[lonely\] accept reg #1 from a .*waiting for b/);
});

test.serial('a peer with the wrong secret is ignored; neither side pairs', async (t) => {
  const { child: rdv, port } = await startRendezvous(t);
  const a = startPeer(t, { role: 'a', session: 'badsecret', rdvPort: port, localPort: await freePort(), waitMs: 600 });
  const b = startPeer(t, { role: 'b', session: 'badsecret', rdvPort: port, localPort: await freePort(), waitMs: 600, secret: 'not-the-secret' });
  const [ra, rb] = await Promise.all([a, b]);
  for (const res of [ra, rb]) {
    t.is(res.exitCode, 1, res.stderr);
    const v = verdictOf(t, res);
    t.false(v.ok);
    t.is(v.peer, null);
    t.regex(v.reason ?? '', /not paired by rendezvous .* within 600 ms/);
  }
  const r = await stopRendezvous(t, rdv);
  t.regex(r.stderr, /reject \d+ B from 127\.0\.0\.1:\d+: bad signature \(claims session "badsecret"\)/);
  t.notRegex(r.stderr, /from b at/, 'the bad peer was never registered');
  t.notRegex(r.stderr, /answering with/);
});

test.serial('the rendezvous survives garbage, then still pairs peers', async (t) => {
  const { child: rdv, port } = await startRendezvous(t);
  const s = await udpSocket(t);
  const good = sign(msg({ t: 'reg', s: 'junk' }), SECRET);
  const garbage: Buffer[] = [
    randomBytes(64),
    randomBytes(1),
    Buffer.alloc(0),
    Buffer.from('.'),
    Buffer.from(JSON.stringify(msg({ t: 'reg' }))), // unsigned JSON
    Buffer.concat([good.subarray(0, 30), good.subarray(64)]), // truncated signature
    sign(msg({ t: 'reg' }), 'wrong-secret'),
    rawSign('{"t":"reg",'), // signed, unparsable
    rawSign('null'),
    rawSign(JSON.stringify({ ...msg({ t: 'reg' }), n: 'x' })),
    sign(msg({ t: 'reg', ts: Date.now() - 120_000 }), SECRET), // stale
    sign(msg({ t: 'reg', r: 'rdv' }), SECRET), // claims to be the rendezvous
    sign(msg({ t: 'pong' }), SECRET), // not served
    Buffer.alloc(4000, 0x2e),
  ];
  for (const g of garbage) await sendTo(s, g, port);
  await delay(50);
  t.is(rdv.exitCode, null, 'still running after garbage');

  const [pa, pb] = [await freePort(), await freePort()];
  const [ra, rb] = await Promise.all([
    startPeer(t, { role: 'a', session: 'after-junk', rdvPort: port, localPort: pa }),
    startPeer(t, { role: 'b', session: 'after-junk', rdvPort: port, localPort: pb }),
  ]);
  t.is(ra.exitCode, 0, ra.stderr);
  t.is(rb.exitCode, 0, rb.stderr);
  t.is(verdictOf(t, ra).peer, `127.0.0.1:${pb}`);
  t.is(verdictOf(t, rb).peer, `127.0.0.1:${pa}`);

  const r = await stopRendezvous(t, rdv);
  const rejects = r.stderr.split('\n').filter((l) => / reject \d+ B from 127\.0\.0\.1:/.test(l));
  t.is(rejects.length, garbage.length, r.stderr);
  t.regex(r.stderr, /stale timestamp/);
  t.regex(r.stderr, /\[sess-1\] reject .*unexpected pong/);
});

test.serial('rendezvous protocol: answers reg with the other endpoint, pushes to the early peer, follows moves', async (t) => {
  const { child: rdv, port } = await startRendezvous(t);
  const a = await udpSocket(t);
  const b = await udpSocket(t);
  const b2 = await udpSocket(t);
  const other = await udpSocket(t);
  const reg = (role: 'a' | 'b', session = 'proto') => sign(msg({ t: 'reg', s: session, r: role }), SECRET);

  await sendTo(a, reg('a'), port);
  await sendTo(other, reg('b', 'proto-other'), port); // another session: must not pair with a
  await t.throwsAsync(nextMessage(a, 150)); // nobody to introduce yet

  const pushToA = nextMessage(a, 1000, (m) => m.t === 'peer');
  const replyToB = nextMessage(b, 1000, (m) => m.t === 'peer');
  await sendTo(b, reg('b'), port);
  const [pa, pb] = await Promise.all([pushToA, replyToB]);
  t.is(pa.from, port);
  t.deepEqual([pa.m.r, pa.m.s, pa.m.ep], ['rdv', 'proto', `127.0.0.1:${b.port}`]);
  t.deepEqual([pb.m.r, pb.m.s, pb.m.ep], ['rdv', 'proto', `127.0.0.1:${a.port}`]);

  // b re-registers from another port (a new NAT mapping): a is told, b2 gets a's endpoint
  const movedToA = nextMessage(a, 1000, (m) => m.t === 'peer');
  const replyToB2 = nextMessage(b2, 1000, (m) => m.t === 'peer');
  await sendTo(b2, reg('b'), port);
  t.is((await movedToA).m.ep, `127.0.0.1:${b2.port}`);
  t.is((await replyToB2).m.ep, `127.0.0.1:${a.port}`);
  await stopRendezvous(t, rdv);
});

test.serial('peer learns the peer-reflexive source of pings and confirms there; reports it', async (t) => {
  // The test plays the rendezvous (rdvSock) and peer b. The rendezvous announces b at a dead
  // port; b's pings really come from bSock, so the agent must answer and aim at bSock.
  const rdvSock = await udpSocket(t);
  const bSock = await udpSocket(t);
  const dead = await freePort();
  const localPort = await freePort();
  const a = startPeer(t, { role: 'a', session: 'refl', rdvPort: rdvSock.port, localPort, timeoutMs: 1500 });

  const reg = await nextMessage(rdvSock, 5000, (m) => m.t === 'reg');
  t.deepEqual([reg.m.r, reg.m.s, reg.from], ['a', 'refl', localPort]);
  // a forged `peer` message from a socket that is not the rendezvous must be ignored
  await sendTo(bSock, sign(msg({ t: 'peer', s: 'refl', r: 'rdv', ep: `127.0.0.1:${bSock.port}` }), SECRET), localPort);
  await sendTo(rdvSock, sign(msg({ t: 'peer', s: 'refl', r: 'rdv', ep: `127.0.0.1:${dead}` }), SECRET), localPort);
  await delay(60); // a now pings the dead port
  const pong = nextMessage(bSock, 1000, (m) => m.t === 'pong');
  const pingAtB = nextMessage(bSock, 1000, (m) => m.t === 'ping');
  await sendTo(bSock, sign(msg({ t: 'ping', s: 'refl', r: 'b' }), SECRET), localPort);
  t.is((await pong).m.r, 'a');
  t.is((await pingAtB).m.r, 'a', 'pings now aimed at the observed source');
  const closes = nextMessage(bSock, 1000, (m) => m.t === 'close');
  await sendTo(bSock, sign(msg({ t: 'pong', s: 'refl', r: 'b', n: 2 }), SECRET), localPort);
  await closes;

  const res = await a;
  t.is(res.exitCode, 0, res.stderr);
  const v = verdictOf(t, res);
  t.true(v.ok);
  t.is(v.peer, `127.0.0.1:${bSock.port}`);
  t.true(v.timeToDirectMs! >= 50, `timeToDirectMs ${v.timeToDirectMs} counts from the peer message`);
  t.regex(res.stderr, /drop .*peer message not from the rendezvous/);
  t.regex(res.stderr, /peer-reflexive: aiming pings at observed source/);
});

test.serial('punch window expiry gives a specific reason', async (t) => {
  const rdvSock = await udpSocket(t);
  const dead = await freePort();
  const a = startPeer(t, { role: 'b', session: 'window', rdvPort: rdvSock.port, localPort: await freePort(), timeoutMs: 300 });
  const reg = await nextMessage(rdvSock, 5000, (m) => m.t === 'reg');
  await sendTo(rdvSock, sign(msg({ t: 'peer', s: 'window', r: 'rdv', ep: `127.0.0.1:${dead}` }), SECRET), reg.from);
  const res = await a;
  t.is(res.exitCode, 1, res.stderr);
  const v = verdictOf(t, res);
  t.false(v.ok);
  t.regex(v.reason ?? '', new RegExp(`^no pong within 300 ms of learning peer 127\\.0\\.0\\.1:${dead} \\(sent [1-9]\\d* pings, received 0 pongs and 0 pings`));
});

test.serial('missing NMX_ROLE: exit 2 with one stderr line naming it', async (t) => {
  const res = await spawnAgent(t, PEER, { NMX_SESSION: 's', NMX_RENDEZVOUS: '127.0.0.1:3478', NMX_SECRET: 'x', NMX_LOCAL_PORT: '40000' });
  t.is(res.exitCode, 2);
  t.is(res.stdout, '');
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, res.stderr);
  t.regex(lines[0] ?? '', /NMX_ROLE/);

  const bad = await spawnAgent(t, PEER, { NMX_ROLE: 'a', NMX_SESSION: 's', NMX_RENDEZVOUS: '127.0.0.1:3478', NMX_SECRET: 'x', NMX_LOCAL_PORT: 'http' });
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /NMX_LOCAL_PORT/);

  const rdv = await spawnAgent(t, RDV, { NMX_LISTEN: '127.0.0.1:0' });
  t.is(rdv.exitCode, 2);
  t.regex(rdv.stderr, /NMX_SECRET/);
  t.is(rdv.stdout, '');
});

test.serial('SIGTERM ends a waiting peer promptly without output', async (t) => {
  const rdvSock = await udpSocket(t);
  const p = startPeer(t, { role: 'a', session: 'term', rdvPort: rdvSock.port, localPort: await freePort(), waitMs: 10_000 });
  await nextMessage(rdvSock, 5000, (m) => m.t === 'reg'); // it is up and registering
  const sent = Date.now();
  process.kill(p.pid!, 'SIGTERM');
  const res = await p;
  t.true(Date.now() - sent < 1000);
  t.is(res.exitCode, 143);
  t.is(res.stdout, '');
});
