#!/usr/bin/env node
// natmatrix rendezvous for the webrtc agent: a tiny signalling server for offer/answer and trickled
// ICE candidates, keyed by NMX_SESSION. TCP (it gets through every NAT, also routers that drop UDP),
// one signed JSON line per message (wire.mjs). A peer's first line is a signed `join` naming its
// session and role; after that every signed line it sends is forwarded unchanged to the other role of
// the same session, or queued until that one joins. Lines that fail the signature, name another
// session or role than the connection joined with, or repeat a sequence number are dropped and logged.
//
// Environment: NMX_LISTEN (ip:port), NMX_SECRET (hex). Prints {"ready":true,"listen":"ip:port"} once
// bound; logs to stderr, each line prefixed [<session>]; exits 0 on SIGTERM/SIGINT.
import { createServer } from 'node:net';
import { decode, keyOf, lineReader } from './wire.mjs';

const log = (session, text) => process.stderr.write(`[${session ?? '-'}] ${text}\n`);

const key = keyOf(process.env.NMX_SECRET);
const listen = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(process.env.NMX_LISTEN ?? '');
if (!key || !listen || Number(listen[2]) > 65535) {
  log(null, `bad environment: NMX_LISTEN=${JSON.stringify(process.env.NMX_LISTEN)} NMX_SECRET ${key ? 'ok' : 'missing or not hex'}`);
  process.exit(2);
}

const QUEUE_MAX = 256;
const IDLE_MS = 120_000;

/** session → { peers: {a, b} (sockets), queue: {a: [], b: []} (lines waiting for that role), last: {a, b} (highest n), seen } */
const sessions = new Map();
const sessionOf = (s) => {
  let x = sessions.get(s);
  if (!x) sessions.set(s, (x = { peers: { a: null, b: null }, queue: { a: [], b: [] }, last: { a: 0, b: 0 }, seen: Date.now() }));
  return x;
};
const other = (r) => (r === 'a' ? 'b' : 'a');

const server = createServer((sock) => {
  sock.setNoDelay(true);
  sock.setEncoding('utf8');
  const from = `${sock.remoteAddress}:${sock.remotePort}`;
  let joined = null; // { s, r }
  const onLine = (line) => {
    const { msg, error } = decode(key, line);
    if (!msg) {
      log(joined?.s, `dropped a line from ${from}: ${error}`);
      return;
    }
    if (!joined) {
      if (msg.t !== 'join') {
        log(msg.s, `dropped ${msg.t} from ${from}: not joined yet`);
        return;
      }
      const x = sessionOf(msg.s);
      if (msg.n <= x.last[msg.r]) {
        log(msg.s, `dropped join of ${msg.r} from ${from}: sequence ${msg.n} not after ${x.last[msg.r]} (replay?)`);
        return;
      }
      x.last[msg.r] = msg.n;
      x.seen = Date.now();
      joined = { s: msg.s, r: msg.r };
      const old = x.peers[msg.r];
      if (old && old !== sock) {
        log(msg.s, `${msg.r} joined again from ${from}; closing its old connection`);
        old.destroy();
      }
      x.peers[msg.r] = sock;
      log(msg.s, `${msg.r} joined from ${from}${x.peers[other(msg.r)] ? ` (${other(msg.r)} is here)` : ''}`);
      for (const queued of x.queue[msg.r].splice(0)) sock.write(queued);
      return;
    }
    if (msg.s !== joined.s || msg.r !== joined.r) {
      log(joined.s, `dropped ${msg.t} from ${from}: it names ${msg.s}/${msg.r}, the connection joined as ${joined.s}/${joined.r}`);
      return;
    }
    const x = sessionOf(joined.s);
    if (msg.n <= x.last[msg.r]) {
      log(joined.s, `dropped ${msg.t} #${msg.n} of ${msg.r}: not after #${x.last[msg.r]} (replay?)`);
      return;
    }
    x.last[msg.r] = msg.n;
    x.seen = Date.now();
    const to = x.peers[other(msg.r)];
    const what = msg.t === 'sdp' ? `${msg.d?.type}` : msg.t === 'cand' ? (msg.d ? `candidate ${msg.d.candidate ?? ''}` : 'end-of-candidates') : msg.t;
    if (to && !to.destroyed) {
      to.write(`${line}\n`);
      log(joined.s, `${msg.r} → ${other(msg.r)}: ${what}`);
    } else if (x.queue[other(msg.r)].length < QUEUE_MAX) {
      x.queue[other(msg.r)].push(`${line}\n`);
      log(joined.s, `${msg.r} → ${other(msg.r)} (queued, ${other(msg.r)} not here yet): ${what}`);
    } else {
      log(joined.s, `dropped ${msg.t} of ${msg.r}: queue for ${other(msg.r)} is full`);
    }
  };
  sock.on(
    'data',
    lineReader(onLine, (why) => {
      log(joined?.s, `closing ${from}: ${why}`);
      sock.destroy();
    }),
  );
  sock.on('error', (e) => log(joined?.s, `connection ${from}: ${e.message}`));
  sock.on('close', () => {
    if (!joined) return;
    const x = sessions.get(joined.s);
    if (x && x.peers[joined.r] === sock) {
      x.peers[joined.r] = null;
      x.seen = Date.now();
      log(joined.s, `${joined.r} left`);
    }
  });
});

// forget sessions nobody has used for a while (both gone, or never paired)
const sweep = setInterval(() => {
  const now = Date.now();
  for (const [s, x] of sessions) {
    const idle = now - x.seen > IDLE_MS;
    if (idle && (!x.peers.a || !x.peers.b)) sessions.delete(s);
  }
}, 10_000);
sweep.unref();

server.on('error', (e) => {
  log(null, `server error: ${e.message}`);
  process.exit(3);
});
server.listen({ host: listen[1], port: Number(listen[2]) }, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, listen: `${listen[1]}:${listen[2]}` })}\n`);
  log(null, `listening on ${listen[1]}:${listen[2]} (TCP)`);
});

const stop = (sig) => {
  log(null, `${sig}: closing`);
  server.close();
  for (const x of sessions.values()) for (const s of Object.values(x.peers)) s?.destroy();
  process.exit(0);
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
