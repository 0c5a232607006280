// A UDP hole-punching peer written with natmatrix/agent (agents/sdk), the way an agent author would.
// It speaks the shipped rendezvous's signed protocol, so its manifest can name
// agents/udp-punch/rendezvous.ts as its rendezvous (agents/udp-punch is the same thing with more care:
// pings seen before pairing, holds, statistics). Outside this repository, import from 'natmatrix/agent'.
//
//   1. register with the rendezvous (NMX_RENDEZVOUS) every 50 ms until it names the other peer;
//   2. ping that peer every 20 ms, and answer its pings with pongs to where they came from (aiming there
//      too: its NAT may have mapped it to another port than the rendezvous saw);
//   3. a pong, or the peer's close, proves the path: send 3 closes so the peer knows too, then connected.
// It fails cleanly NMX_WAIT_MS after start if never paired, and NMX_TIMEOUT_MS after pairing without a
// pong; a bad variable is exit 2, a port it cannot bind exit 3, SIGTERM exit 143.
import dgram from 'node:dgram';
import {
  type AgentResult,
  configOrExit,
  connected,
  type Endpoint,
  EnvError,
  exitOnSignals,
  failed,
  fault,
  formatEndpoint,
  makeLogger,
  type MessageType,
  otherRole,
  parseEndpoint,
  readPeerEnv,
  ReplayGuard,
  report,
  round1,
  sameEndpoint,
  sign,
  verify,
} from '../sdk/index.ts';

// the contract's environment, typed; this agent needs a rendezvous, so its absence is a bad environment
const env = configOrExit((vars) => {
  const e = readPeerEnv(vars);
  if (!e.NMX_RENDEZVOUS) throw new EnvError('NMX_RENDEZVOUS', 'is not set (this agent needs a rendezvous)');
  return { ...e, NMX_RENDEZVOUS: e.NMX_RENDEZVOUS };
}, 'peer');
const { NMX_ROLE: role, NMX_SESSION: session, NMX_SECRET: secret, NMX_RENDEZVOUS: rendezvous } = env;
const log = makeLogger(role);
exitOnSignals(log);

const sock = dgram.createSocket('udp4');
const replay = new ReplayGuard();
const timers: NodeJS.Timeout[] = [];
let state: 'registering' | 'punching' | 'done' = 'registering';
let peer: Endpoint | null = null;
let learnedAt = 0;
let seq = 0;
let bound = false;

const send = (t: MessageType, to: Endpoint, then?: () => void): void =>
  sock.send(sign({ t, s: session, r: role, ts: Date.now(), n: ++seq }, secret), to.port, to.address, () => then?.());

/** Stop everything, print the verdict and exit with its code. */
const end = (result: AgentResult): void => {
  state = 'done';
  for (const t of timers) clearTimeout(t);
  sock.close();
  report(result);
};

const fail = (reason: string): void => {
  log(`FAILED: ${reason}`);
  end(failed(reason));
};

const confirm = (from: Endpoint): void => {
  state = 'done';
  for (const t of timers) clearTimeout(t);
  const timeToDirectMs = round1(performance.now() - learnedAt);
  log(`direct path to ${formatEndpoint(from)} confirmed after ${timeToDirectMs} ms; sending closes`);
  send('close', from);
  send('close', from);
  send('close', from, () => end(connected({ path: 'direct-udp', peer: formatEndpoint(from), timeToDirectMs })));
};

sock.on('message', (buf, from) => {
  if (state === 'done') return;
  const v = verify(buf, secret, { session, self: role, replay });
  if (!v.ok) return log(`drop ${buf.length} B from ${formatEndpoint(from)}: ${v.reason}`);
  const m = v.msg;
  if (m.t === 'peer' && m.r === 'rdv' && sameEndpoint(from, rendezvous) && state === 'registering') {
    state = 'punching';
    peer = parseEndpoint(m.ep ?? '');
    learnedAt = performance.now();
    log(`paired: peer ${otherRole(role)} at ${formatEndpoint(peer)}; punching for up to ${env.NMX_TIMEOUT_MS} ms`);
    for (const t of timers) clearTimeout(t);
    timers.push(
      setInterval(() => send('ping', peer!), 20),
      setTimeout(() => fail(`no pong within ${env.NMX_TIMEOUT_MS} ms of learning peer ${formatEndpoint(peer!)}`), env.NMX_TIMEOUT_MS),
    );
    send('ping', peer);
  } else if (m.r === otherRole(role) && state === 'punching') {
    if (m.t === 'ping') {
      send('pong', from);
      peer = from;
    } else if (m.t === 'pong' || m.t === 'close') {
      confirm(from);
    }
  }
});

sock.on('error', (err) => {
  if (state === 'done') return;
  if (!bound) end(fault(`cannot bind UDP 0.0.0.0:${env.NMX_LOCAL_PORT}: ${err.message}`));
  else log(`socket error: ${err.message}`);
});

sock.bind({ port: env.NMX_LOCAL_PORT, address: '0.0.0.0', exclusive: true }, () => {
  bound = true;
  log(`bound; registering with ${formatEndpoint(rendezvous)} as ${role} of ${session}`);
  send('reg', rendezvous);
  timers.push(
    setInterval(() => send('reg', rendezvous), 50),
    setTimeout(() => fail(`not paired by the rendezvous ${formatEndpoint(rendezvous)} within ${env.NMX_WAIT_MS} ms`), env.NMX_WAIT_MS),
  );
});
