import dgram from 'node:dgram';
import { type AgentResult, configOrExit, connected, type Endpoint, exitOnSignals, failed, formatEndpoint, makeLogger,
  type MessageType, parseEndpoint, readPeerEnv, report, round1, sign, verify } from 'natmatrix/agent';
const env = configOrExit(readPeerEnv, 'peer'); // NMX_* typed; a bad one: one stderr line naming it, exit 2
exitOnSignals(makeLogger(env.NMX_ROLE)); // SIGTERM (the deadline): exit 143, no verdict
const { NMX_ROLE: role, NMX_SESSION: session, NMX_SECRET: secret, NMX_RENDEZVOUS: rendezvous } = env;
const sock = dgram.createSocket('udp4');
let n = 0, peer: Endpoint | null = null, learnedAt = 0, done = false;
const send = (t: MessageType, to: Endpoint, then = () => {}) =>
  sock.send(sign({ t, s: session, r: role, ts: Date.now(), n: ++n }, secret), to.port, to.address, then);
const end = (result: AgentResult) => ((done = true), report(result)); // the verdict line, then exit 0 / 1
sock.on('message', (buf, from) => {
  const v = verify(buf, secret, { session, self: role }); // signed with the run's secret, fresh, this session
  if (!v.ok || done) return;
  if (v.msg.t === 'peer' && !peer) { // the rendezvous names the other peer: punch for NMX_TIMEOUT_MS
    [peer, learnedAt] = [parseEndpoint(v.msg.ep!), performance.now()];
    setTimeout(() => done || end(failed(`no pong within ${env.NMX_TIMEOUT_MS} ms`)), env.NMX_TIMEOUT_MS);
  } else if (v.msg.t === 'ping') send('pong', from);
  else if (v.msg.t === 'pong' || v.msg.t === 'close') { // the path works both ways: tell the peer, report
    const ms = round1(performance.now() - learnedAt);
    done = true, send('close', from, () => end(connected({ path: 'direct-udp', peer: formatEndpoint(from), timeToDirectMs: ms })));
  }
});
sock.bind(env.NMX_LOCAL_PORT, () => setInterval(() => (peer ? send('ping', peer) : send('reg', rendezvous!)), 20));
setTimeout(() => peer || end(failed(`not paired within ${env.NMX_WAIT_MS} ms`)), env.NMX_WAIT_MS);
