#!/usr/bin/env node
// natmatrix peer agent: an off-the-shelf WebRTC stack (werift: ICE, DTLS, SCTP data channels, pure
// TypeScript) behind the lab's NATs. a makes the offer, b answers; SDP and trickled candidates go
// through signal.mjs (signed lines over TCP). ICE servers: the harness's STUN (NMX_STUN) and TURN
// (NMX_TURN, long-term credentials). Once the data channel is open, a sends a ping, b echoes it, a
// acknowledges; each side then prints one verdict line on stdout and exits. See README.md.
import { writeSync } from 'node:fs';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { applyWeriftFixes } from './werift-fixes.mjs';
import { decode, encode, keyOf, lineReader } from './wire.mjs';

// ---- stdout carries the verdict and nothing else ---------------------------------------------
const stdoutFd = 1;
process.stdout.write = (chunk, enc, cb) => process.stderr.write(chunk, enc, cb);
console.log = console.info = console.debug = (...args) => console.error(...args);

const env = process.env;
const role = env.NMX_ROLE;
const tag = `[${env.NMX_SESSION ?? '-'} ${role ?? '?'}]`;
const now = () => performance.now(); // ms since this process started
const log = (text) => process.stderr.write(`${tag} ${now().toFixed(1).padStart(7)} ms ${text}\n`);

let finished = false;
let fixesFired = null; // werift-fixes.mjs: fix name → how often it changed werift's behaviour
let startCpuMs; // CPU ms spent until werift was loaded and the peer connection made its first description
const noteStartCpu = () => {
  if (startCpuMs === undefined) {
    const c = process.cpuUsage();
    startCpuMs = Math.round((c.user + c.system) / 1000);
  }
};
let pc = null;
/** Print the verdict (the last stdout line) and exit. */
function finish(code, verdict) {
  if (finished) return;
  finished = true;
  // what this peer cost: CPU ms since start (and up to werift being loaded and the first offer or
  // answer made), peak RSS
  const cpu = process.cpuUsage();
  if (fixesFired) verdict.fixesFired = fixesFired;
  verdict.resources = { cpuMs: Math.round((cpu.user + cpu.system) / 1000), startCpuMs: startCpuMs ?? null, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) };
  const line = JSON.stringify(verdict);
  log(`verdict (exit ${code}): ${line}`);
  try {
    writeSync(stdoutFd, `${line}\n`);
  } catch (e) {
    process.stderr.write(`${tag} cannot write the verdict: ${e.message}\n`);
  }
  if (!pc) process.exit(code);
  // a signal leaves 300 ms before SIGKILL: release TURN only briefly then
  releaseTurn(code >= 128 ? 100 : 500).finally(() => process.exit(code));
}
/**
 * Delete our TURN allocations (Refresh with LIFETIME 0, RFC 8656 §7), which werift does not do on
 * close. Left alone, an allocation lives 600 s in the run's one coturn; the next try in this lane
 * comes from the same 5-tuple (same WAN address, and an endpoint-independent NAT preserves the
 * TURN socket's port), coturn answers its Allocate 437 Allocation Mismatch, and werift falls back to
 * TURN over TCP.
 */
async function releaseTurn(maxMs) {
  if (!pc) return;
  const conn = iceConnection();
  const turns = (conn?.protocols ?? []).map((p) => p?.turn).filter((t) => t && typeof t.requestWithRetry === 'function' && t.server);
  if (!turns.length || !weriftMessage) return;
  const refresh0 = (t) => t.requestWithRetry(new weriftMessage(4 /* REFRESH */, 0 /* REQUEST */).setAttribute('LIFETIME', 0), t.server);
  const done = Promise.allSettled(turns.map(refresh0)).then((r) => log(`TURN: released ${r.filter((x) => x.status === 'fulfilled').length} of ${turns.length} allocation(s)`));
  await Promise.race([done, new Promise((r) => setTimeout(r, maxMs))]);
}
let weriftMessage = null;
const fail = (reason, code = 1, extra = {}) => finish(code, { ok: false, path: null, peer: null, reason, ...extra });

// ---- environment -----------------------------------------------------------------------------
const ipPort = (v) => {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(v ?? '');
  return m && Number(m[2]) <= 65535 ? { host: m[1], port: Number(m[2]) } : null;
};
const problems = [];
if (role !== 'a' && role !== 'b') problems.push(`NMX_ROLE=${JSON.stringify(role)} (want a or b)`);
const session = env.NMX_SESSION;
if (!session) problems.push('NMX_SESSION missing');
const rdv = ipPort(env.NMX_RENDEZVOUS);
if (!rdv) problems.push(`NMX_RENDEZVOUS=${JSON.stringify(env.NMX_RENDEZVOUS)} (want ip:port)`);
const key = keyOf(env.NMX_SECRET);
if (!key) problems.push('NMX_SECRET missing or not hex');
const localPort = Number(env.NMX_LOCAL_PORT ?? 0);
if (!Number.isInteger(localPort) || localPort < 0 || localPort > 65535 - 100) problems.push(`NMX_LOCAL_PORT=${JSON.stringify(env.NMX_LOCAL_PORT)}`);
// budget timing: give up NMX_BUDGET_MS after start; under window timing, NMX_WAIT_MS + NMX_TIMEOUT_MS
const budgetMs = Number(env.NMX_BUDGET_MS ?? (env.NMX_WAIT_MS && env.NMX_TIMEOUT_MS ? Number(env.NMX_WAIT_MS) + Number(env.NMX_TIMEOUT_MS) : NaN));
if (!Number.isFinite(budgetMs) || budgetMs <= 0) problems.push('NMX_BUDGET_MS missing (or NMX_WAIT_MS + NMX_TIMEOUT_MS)');
// STUN is required: without a server werift falls back to a public one (stun.l.google.com)
const stun = ipPort(env.NMX_STUN);
if (!stun) problems.push(`NMX_STUN=${JSON.stringify(env.NMX_STUN)} (want ip:port; the manifest asks for the turn service)`);
const turn = env.NMX_TURN ? ipPort(env.NMX_TURN) : null;
if (env.NMX_TURN && !turn) problems.push(`NMX_TURN=${JSON.stringify(env.NMX_TURN)} (want ip:port)`);
if (turn && (!env.NMX_TURN_USER || !env.NMX_TURN_PASS)) problems.push('NMX_TURN without NMX_TURN_USER / NMX_TURN_PASS');
// werift gathers one TURN server on one transport; "udp" falls back to TCP by itself when the UDP
// allocation times out. WEBRTC_TURN_TRANSPORT=tcp starts on TCP.
const turnTransport = env.WEBRTC_TURN_TRANSPORT ?? 'udp';
if (!['udp', 'tcp'].includes(turnTransport)) problems.push(`WEBRTC_TURN_TRANSPORT=${JSON.stringify(turnTransport)} (udp or tcp)`);
if (problems.length) fail(`bad environment: ${problems.join('; ')}`, 2);

const other = role === 'a' ? 'b' : 'a';
const onSignal = (sig, code) => process.on(sig, () => fail(`${sig} after ${now().toFixed(0)} ms (${stateText()})`, code));
onSignal('SIGTERM', 143);
onSignal('SIGINT', 130);
// A stray exception inside the stack (none seen in the measured runs) must not end the process without
// a verdict: log it and keep going; the budget decides.
process.on('uncaughtException', (e) => log(`uncaught (ignored): ${e?.stack ?? e}`));
process.on('unhandledRejection', (e) => log(`unhandled rejection (ignored): ${e?.message ?? e}`));

const budgetTimer = setTimeout(() => {
  dumpChecklist();
  fail(`no data channel echo within the ${budgetMs} ms budget (${stateText()})`);
}, Math.max(0, budgetMs - now()));

// ---- what happened so far, for logs and failure reasons ----------------------------------------
const marks = {}; // event → ms since start
const mark = (what) => {
  if (marks[what] === undefined) marks[what] = Math.round(now());
};
const localCands = [];
const remoteCands = [];
const countTypes = (list) => {
  const c = {};
  for (const x of list) c[x] = (c[x] ?? 0) + 1;
  return Object.entries(c).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
};
const candType = (c) => /\btyp (\w+)/.exec(c ?? '')?.[1] ?? '?';
const iceConnection = () => pc?.sctpTransport?.dtlsTransport?.iceTransport?.connection ?? pc?.iceTransports?.[0]?.connection ?? null;
const STATES = ['frozen', 'waiting', 'in-progress', 'succeeded', 'failed'];
function stateText() {
  if (!pc) return 'werift not started';
  const conn = iceConnection();
  const pairs = conn?.checkList ?? [];
  const by = {};
  for (const p of pairs) by[STATES[p.state] ?? p.state] = (by[STATES[p.state] ?? p.state] ?? 0) + 1;
  return [
    `ice ${pc.iceConnectionState}, connection ${pc.connectionState}`,
    `local candidates: ${countTypes(localCands)}`,
    `remote: ${countTypes(remoteCands)}`,
    `pairs: ${Object.entries(by).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}`,
  ].join('; ');
}

// ---- the selected pair ---------------------------------------------------------------------------
const turnIp = turn?.host ?? null;
function selectedPair() {
  const p = iceConnection()?.nominated;
  if (!p) return null;
  const l = p.localCandidate;
  const r = p.remoteCandidate;
  const [rh, rp] = p.remoteAddr;
  const proto = p.protocol;
  return {
    local: { type: l.type, addr: `${l.host}:${l.port}`, ...(l.type === 'relay' ? { turnTransport: proto?.turn?.transport?.type ?? null } : {}) },
    remote: { type: r.type, addr: `${r.host}:${r.port}` },
    remoteAddr: `${rh}:${rp}`,
  };
}
const pairText = (p) => (p ? `${p.local.type} ${p.local.addr}${p.local.turnTransport ? ` (TURN over ${p.local.turnTransport})` : ''} → ${p.remote.type} ${p.remote.addr}` : 'none');
/** A pair goes through TURN if either candidate is a relay candidate; a peer-reflexive remote
 * candidate on the TURN server's address is the partner's relay candidate, learned from a check. */
const relayedPair = (p) => !!p && (p.local.type === 'relay' || p.remote.type === 'relay' || p.remoteAddr.split(':')[0] === turnIp);
function dumpChecklist() {
  const conn = iceConnection();
  if (!conn) return;
  for (const p of conn.checkList) {
    const l = p.localCandidate;
    const r = p.remoteCandidate;
    log(`  pair ${l.type} ${l.host}:${l.port} → ${r.type} ${r.host}:${r.port}: ${STATES[p.state] ?? p.state}${p.nominated ? ', nominated' : ''}${conn.nominated === p ? ', SELECTED' : ''} (requests sent ${p.requestsSent}, responses ${p.responsesReceived}, requests received ${p.requestsReceived})`);
  }
}

// ---- signalling ------------------------------------------------------------------------------------
let seq = 0;
let lastSeen = 0;
let sock = null;
let sockReady = false;
const outbox = []; // lines waiting for a connection
function sendSignal(t, d) {
  const line = encode(key, { t, s: session, r: role, n: ++seq, ts: Date.now(), d });
  if (sock && sockReady) sock.write(line);
  else outbox.push(line);
}
function connectSignal(attempt = 0) {
  if (finished) return;
  const s = connect({ host: rdv.host, port: rdv.port });
  s.setNoDelay(true);
  s.setEncoding('utf8');
  s.on('connect', () => {
    sock = s;
    sockReady = true;
    s.write(encode(key, { t: 'join', s: session, r: role, n: ++seq, ts: Date.now() }));
    for (const line of outbox.splice(0)) s.write(line);
    mark('signal');
    log(`signalling: joined ${rdv.host}:${rdv.port} as ${role}`);
  });
  s.on('data', lineReader(onSignalLine, (why) => log(`signalling: ${why}`)));
  s.on('error', (e) => {
    if (attempt % 10 === 0) log(`signalling: ${e.message}`);
  });
  s.on('close', () => {
    if (sock === s) {
      sock = null;
      sockReady = false;
    }
    // reconnect until the data channel works (the rendezvous may not be up yet)
    if (!finished && !marks.open) setTimeout(() => connectSignal(attempt + 1), 100);
  });
}
let chain = Promise.resolve(); // signalling messages are applied one after another, in order
function onSignalLine(line) {
  const { msg, error } = decode(key, line);
  if (!msg) return log(`signalling: dropped a line: ${error}`);
  if (msg.s !== session) return log(`signalling: dropped ${msg.t} of session ${msg.s}`);
  if (msg.r !== other) return log(`signalling: dropped ${msg.t} claiming role ${msg.r}`);
  if (msg.n <= lastSeen) return log(`signalling: dropped ${msg.t} #${msg.n} (replay: last was #${lastSeen})`);
  lastSeen = msg.n;
  chain = chain.then(() => onSignalMessage(msg)).catch((e) => log(`signalling: ${msg.t} failed: ${e?.stack ?? e}`));
}

let haveRemote = false;
let gatheredNow;
const gathered = new Promise((r) => (gatheredNow = r));
async function onSignalMessage(msg) {
  if (msg.t === 'sdp') {
    const d = msg.d;
    if (!d || typeof d.sdp !== 'string' || (d.type !== (role === 'a' ? 'answer' : 'offer'))) return log(`signalling: unexpected description ${d?.type}`);
    log(`signalling: got the ${d.type}`);
    mark(d.type);
    if (role === 'a' && !marks.gathered) {
      // werift pairs a local candidate gathered after its checks started with nothing (only host
      // candidates are paired on arrival), and a's checks start with the answer: a relay candidate
      // that comes later (TURN over TCP after the UDP allocation timed out, or a slow allocation) would
      // never be checked from a's side. So a applies the answer once its own gathering is complete.
      log('holding the answer until local gathering is complete');
      await Promise.race([gathered, new Promise((r) => setTimeout(r, Math.max(0, budgetMs - 3000 - now())))]);
      log(`applying the answer (${marks.gathered ? 'gathering complete' : 'gathering still running'})`);
    }
    await pc.setRemoteDescription(d);
    haveRemote = true;
    for (const c of pendingRemote.splice(0)) await addRemote(c);
    if (role === 'b') {
      const answer = await pc.createAnswer();
      noteStartCpu();
      sendSignal('sdp', answer);
      log('signalling: sent the answer');
      // gathers (trickling candidates), then starts ICE checks
      pc.setLocalDescription(answer).catch((e) => log(`setLocalDescription: ${e?.stack ?? e}`));
    }
  } else if (msg.t === 'cand') {
    if (!haveRemote) pendingRemote.push(msg.d);
    else await addRemote(msg.d);
  }
}
const pendingRemote = [];
async function addRemote(c) {
  if (c && typeof c.candidate === 'string' && c.candidate) {
    remoteCands.push(candType(c.candidate));
    log(`remote candidate: ${c.candidate}`);
    await pc.addIceCandidate(c);
  } else {
    log('remote: end of candidates');
    await pc.addIceCandidate(null);
  }
}

// ---- the data channel exchange ------------------------------------------------------------------
// a: ping (with a's selected pair) → b: echo (with b's) → a: ack → b: fin. Each side thus knows both
// selected pairs, and the path both name is the same: relayed if either side's pair uses TURN.
let myPair = null;
let theirPair = null;
function verdictOk(atMs) {
  const path = relayedPair(myPair) || relayedPair(theirPair) ? 'relayed' : 'direct-udp';
  const peer = myPair?.remoteAddr ?? null;
  finish(0, {
    ok: true,
    path,
    peer,
    timeToDirectMs: Math.round(atMs * 10) / 10,
    pair: pairText(myPair),
    peerPair: pairText(theirPair),
    asymmetric: !!myPair && !!theirPair && relayedPair(myPair) !== relayedPair(theirPair),
    marks,
  });
}
function onChannel(dc) {
  dc.onopen = () => {
    mark('open');
    myPair = selectedPair();
    log(`data channel open; selected pair ${pairText(myPair)}`);
    dumpChecklist();
    if (role === 'a') {
      dc.send(JSON.stringify({ t: 'ping', s: session, pair: myPair }));
      log('sent ping');
    }
  };
  dc.onmessage = ({ data }) => {
    let m;
    try {
      m = JSON.parse(String(data));
    } catch {
      return log(`data channel: not JSON: ${String(data).slice(0, 80)}`);
    }
    if (m.s !== session) return log(`data channel: message of session ${m.s}`);
    if (role === 'b' && m.t === 'ping') {
      mark('ping');
      myPair ??= selectedPair();
      theirPair = m.pair ?? null;
      dc.send(JSON.stringify({ t: 'echo', s: session, pair: myPair }));
      log(`ping from a (its pair ${pairText(theirPair)}); echoed`);
    } else if (role === 'a' && m.t === 'echo') {
      const at = now();
      mark('echo');
      theirPair = m.pair ?? null;
      log(`echo from b (its pair ${pairText(theirPair)}); acknowledging`);
      dc.send(JSON.stringify({ t: 'ack', s: session }));
      // let the ack leave; b answers fin once it has it
      const done = () => verdictOk(at);
      waitFin = done;
      setTimeout(done, 1000);
    } else if (role === 'b' && m.t === 'ack') {
      const at = now();
      mark('ack');
      dc.send(JSON.stringify({ t: 'fin', s: session }));
      setTimeout(() => verdictOk(at), 50);
    } else if (role === 'a' && m.t === 'fin') {
      waitFin?.();
    }
  };
}
let waitFin = null;

// ---- start ---------------------------------------------------------------------------------------
connectSignal();
const werift = await import('werift');
const { RTCPeerConnection } = werift;
weriftMessage = werift.Message ?? null;
mark('loaded');
// werift-fixes.mjs: runtime fixes for werift bugs this lab runs into (WEBRTC_FIXES=none: as shipped)
try {
  fixesFired = applyWeriftFixes(werift, env.WEBRTC_FIXES ?? 'all', log);
} catch (e) {
  fail(`bad environment: WEBRTC_FIXES: ${e.message}`, 2);
}
const iceServers = [{ urls: `stun:${stun.host}:${stun.port}` }];
if (turn) {
  // werift uses the first TURN URL only (and retries a failed UDP allocation over TCP itself)
  iceServers.push({ urls: [`turn:${turn.host}:${turn.port}?transport=${turnTransport}`], username: env.NMX_TURN_USER, credential: env.NMX_TURN_PASS });
}
pc = new RTCPeerConnection({
  iceServers,
  iceUseIpv4: true,
  iceUseIpv6: false,
  // the host candidate's socket is the first bound: it gets NMX_LOCAL_PORT (the port a dmz router
  // forwards); the TURN client's UDP socket takes the next free one
  ...(localPort ? { icePortRange: [localPort, localPort + 99] } : {}),
});
log(`werift loaded (fixes: ${Object.keys(fixesFired).join(', ') || 'none'}); ICE servers ${iceServers.map((s) => s.urls).flat().join(', ')}; budget ${budgetMs} ms`);
pc.onicecandidate = ({ candidate }) => {
  if (candidate?.candidate) {
    localCands.push(candType(candidate.candidate));
    mark(`cand-${candType(candidate.candidate)}`);
    log(`local candidate: ${candidate.candidate}`);
    sendSignal('cand', candidate);
  } else {
    mark('gathered');
    gatheredNow();
    log('local: end of candidates');
    sendSignal('cand', null);
  }
};
pc.oniceconnectionstatechange = () => {
  log(`ice ${pc.iceConnectionState}`);
  if (pc.iceConnectionState === 'connected') {
    mark('ice');
    log(`selected pair ${pairText(selectedPair())}`);
  }
};
pc.onconnectionstatechange = () => {
  log(`connection ${pc.connectionState}`);
  if (pc.connectionState === 'connected') mark('connected');
  if (pc.connectionState === 'failed') {
    dumpChecklist();
    fail(`the WebRTC stack gave up: ${stateText()}`);
  }
};
if (role === 'a') {
  onChannel(pc.createDataChannel('natmatrix'));
  const offer = await pc.createOffer();
  noteStartCpu();
  sendSignal('sdp', offer);
  log('signalling: sent the offer');
  // gathers (trickling candidates as they come); ICE starts once the answer is in
  pc.setLocalDescription(offer).catch((e) => log(`setLocalDescription: ${e?.stack ?? e}`));
} else {
  pc.ondatachannel = ({ channel }) => onChannel(channel);
}
void budgetTimer;
