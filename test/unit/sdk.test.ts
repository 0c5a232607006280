// natmatrix/agent (agents/sdk): the contract as code. The SDK's Verdict type is the judge's verdict
// schema's input type (checked by tsc: npm test runs tsc --noEmit first), every verdict its helpers make
// is one the judge accepts, readPeerEnv reads exactly PEER_ENV, and a tiny agent written with it
// (test/fixtures/agents/sdk-agent.ts) ends the contract's way: verdict line and exit code, exit 2 with
// one line for a bad variable, 143 on SIGTERM.
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import test from 'ava';
import { execa } from 'execa';
import type { z } from 'zod';
import {
  type AgentResult,
  configOrExit,
  connected,
  CONTRACT_VERSION,
  EnvError,
  EXIT_CODE,
  failed,
  fault,
  formatEndpoint,
  type Message,
  PEER_ENV,
  type PeerEnvironment,
  type PeerVariable,
  parseEndpoint,
  readPeerConfig,
  readPeerEnv,
  readRendezvousConfig,
  readRendezvousEnv,
  RENDEZVOUS_ENV,
  type RendezvousEnvironment,
  type RendezvousVariable,
  ReplayGuard,
  sign,
  type Step,
  tryParseEndpoint,
  type Verdict,
  verify,
} from '../../agents/sdk/index.ts';
import { CONTRACT_VERSION as HARNESS_CONTRACT_VERSION, PEER_ENV as HARNESS_PEER_ENV } from '../../harness/contract.ts';
import { readVerdict, type verdictSchema } from '../../harness/judge.ts';
import { cleanEnv, ROOT } from './agent-process.ts';

const SECRET = 'test-secret-0123456789';

// ------------------------------------------------------------------------------------------------
// Type-level checks (tsc --noEmit fails when one is false)

/** true when X and Y are the same type (not merely assignable both ways: an index signature of
 * unknown would make almost anything assignable) */
type Equals<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true : false;
type VerdictInput = z.input<typeof verdictSchema>;

const verdictIsTheSchemasInput: Equals<Verdict, VerdictInput> = true;
const stepIsTheSchemasStep: Equals<Step, NonNullable<VerdictInput['steps']>[number]> = true;
const peerEnvironmentHasPeerEnvsKeys: Equals<keyof PeerEnvironment, PeerVariable> = true;
const rendezvousEnvironmentHasRendezvousEnvsKeys: Equals<keyof RendezvousEnvironment, RendezvousVariable> = true;
// the check can fail: a verdict type that lost a field, or narrowed one, is not the schema's
interface WithoutSteps {
  ok: boolean;
  path?: string | null;
  peer?: string | null;
  timeToDirectMs?: number | null;
  reason?: string | null;
  [extra: string]: unknown;
}
interface NarrowerTime extends Omit<WithoutSteps, 'timeToDirectMs'> {
  timeToDirectMs?: number;
  steps?: Step[];
}
const withoutSteps: Equals<WithoutSteps, VerdictInput> = false;
const narrowerTime: Equals<NarrowerTime, VerdictInput> = false;
const looseObject: Equals<{ ok: boolean; [k: string]: unknown }, VerdictInput> = false;

test('the SDK\'s Verdict, Step and environment types are the contract\'s (compile-time checks)', (t) => {
  t.true(verdictIsTheSchemasInput && stepIsTheSchemasStep && peerEnvironmentHasPeerEnvsKeys && rendezvousEnvironmentHasRendezvousEnvsKeys);
  t.false(withoutSteps || narrowerTime || looseObject);
});

test('the harness\'s contract is the SDK\'s: the same tables and version, and contract.json lists the exit codes', (t) => {
  t.is(HARNESS_PEER_ENV, PEER_ENV);
  t.is(HARNESS_CONTRACT_VERSION, CONTRACT_VERSION);
  const file = JSON.parse(readFileSync(new URL('agents/contract.json', new URL('../../', import.meta.url)), 'utf8')) as {
    version: number;
    peer: { environment: Record<string, string>; exitCodes: Record<string, string> };
    rendezvous: { environment: Record<string, string> };
  };
  t.is(file.version, CONTRACT_VERSION);
  t.deepEqual(file.peer.environment, { ...PEER_ENV });
  t.deepEqual(file.rendezvous.environment, { ...RENDEZVOUS_ENV });
  t.deepEqual(Object.keys(file.peer.exitCodes), [String(EXIT_CODE.connected), String(EXIT_CODE.failed), 'other']);
});

// ------------------------------------------------------------------------------------------------
// Verdicts

test('every verdict the helpers make is one the judge reads, with the exit code that agrees with it', (t) => {
  const steps: Step[] = [
    { path: 'direct-udp', ok: false, ms: 1033, reason: 'no pong' },
    { path: 'relayed', ok: true, ms: 33, pingsSent: 3 },
  ];
  const results: AgentResult[] = [
    connected({ path: 'direct-udp', peer: '203.0.113.22:40000', timeToDirectMs: 12.3 }),
    connected({ path: 'direct-tcp', peer: '203.0.113.22:40000', timeToDirectMs: 0, how: 'simultaneous open' }),
    connected({ path: 'relayed', peer: '203.0.113.10:12101', steps }),
    connected({ path: 'matconnect', peer: '9.8.7.6:8080' }),
    failed('no pong within 600 ms'),
    failed('every step failed', { steps: [{ path: 'direct-udp', ok: false, ms: 600, reason: null }] }),
    fault('cannot bind UDP 0.0.0.0:40000: EADDRINUSE'),
    fault('socket gone', 4, { steps }),
  ];
  for (const r of results) {
    const line = JSON.stringify(r.verdict);
    const { verdict, problem } = readVerdict(`${line}\n`);
    t.is(problem, null, line);
    t.is(verdict?.ok, r.code === EXIT_CODE.connected, line);
    if (r.verdict.ok) {
      t.is(r.code, 0);
      t.regex(String(r.verdict.peer), /^\d+\.\d+\.\d+\.\d+:\d+$/);
    } else {
      t.true(r.code !== 0);
      t.is(typeof r.verdict.reason, 'string');
    }
  }
  t.deepEqual(results.map((r) => r.code), [0, 0, 0, 0, 1, 1, 3, 4]);
});

test('the helpers print the documented examples byte for byte', (t) => {
  const file = JSON.parse(readFileSync(new URL('agents/contract.json', new URL('../../', import.meta.url)), 'utf8')) as { peer: { examples: string[] } };
  t.deepEqual(
    [
      JSON.stringify(connected({ path: 'direct-udp', peer: '203.0.113.22:40000', timeToDirectMs: 12.3 }).verdict),
      JSON.stringify(failed('no pong within 600 ms of learning peer 203.0.113.21:40000 (sent 30 pings)').verdict),
    ],
    file.peer.examples,
  );
  // fields are printed in the order given, after ok
  t.is(JSON.stringify(connected({ path: 'direct-udp', peer: '1.2.3.4:5', timeToDirectMs: 1, heldMs: 2 }).verdict), '{"ok":true,"path":"direct-udp","peer":"1.2.3.4:5","timeToDirectMs":1,"heldMs":2}');
  t.is(JSON.stringify(failed('x', { steps: [] }).verdict), '{"ok":false,"path":null,"peer":null,"reason":"x","steps":[]}');
});

// ------------------------------------------------------------------------------------------------
// Environment

const PEER = { NMX_ROLE: 'b', NMX_SESSION: 's', NMX_RENDEZVOUS: '10.0.0.1:3478', NMX_SECRET: 'x', NMX_LOCAL_PORT: '40000' };

/** The variables `read` looks at, when given `env`. */
function variablesRead(read: (env: Record<string, string | undefined>) => unknown, env: Record<string, string>): string[] {
  const seen = new Set<string>();
  const spy = new Proxy(env, {
    get(target, key) {
      if (typeof key === 'string') seen.add(key);
      return Reflect.get(target, key);
    },
    has(target, key) {
      if (typeof key === 'string') seen.add(key);
      return Reflect.has(target, key);
    },
    ownKeys() {
      throw new Error('a reader must not enumerate the environment');
    },
  });
  read(spy);
  return [...seen].sort();
}

test('readPeerEnv reads exactly the variables of PEER_ENV, and the other readers none outside their table', (t) => {
  t.deepEqual(variablesRead(readPeerEnv, PEER), Object.keys(PEER_ENV).sort());
  const peerConfigReads = variablesRead(readPeerConfig, PEER);
  for (const v of peerConfigReads) t.true(Object.hasOwn(PEER_ENV, v), `readPeerConfig reads ${v}, which is not in PEER_ENV`);
  t.deepEqual(peerConfigReads, ['NMX_HOLD_MS', 'NMX_KEEPALIVE_MS', 'NMX_LOCAL_PORT', 'NMX_RENDEZVOUS', 'NMX_ROLE', 'NMX_SECRET', 'NMX_SESSION', 'NMX_TIMEOUT_MS', 'NMX_WAIT_MS']);
  t.deepEqual(variablesRead(readRendezvousEnv, { NMX_SECRET: 'x' }), Object.keys(RENDEZVOUS_ENV).sort());
  t.deepEqual(variablesRead(readRendezvousConfig, { NMX_SECRET: 'x' }), ['NMX_LISTEN', 'NMX_SECRET']);
});

test('readPeerEnv: every variable parsed to its type, defaults, absent ones undefined', (t) => {
  t.deepEqual(readPeerEnv(PEER), {
    NMX_ROLE: 'b',
    NMX_RUN: undefined,
    NMX_SESSION: 's',
    NMX_RENDEZVOUS: { address: '10.0.0.1', port: 3478 },
    NMX_SECRET: 'x',
    NMX_LOCAL_PORT: 40000,
    NMX_TIMEOUT_MS: 1000,
    NMX_WAIT_MS: 10000,
    NMX_BUDGET_MS: undefined,
    NMX_DEADLINE_MS: undefined,
    NMX_SPAWNED_AT_MS: undefined,
    NMX_HOLD_MS: 0,
    NMX_KEEPALIVE_MS: 0,
    NMX_NAT: undefined,
    NMX_PEER_NAT: undefined,
    NMX_RELAY: undefined,
    NMX_RELAY_CA: undefined,
    NMX_RELAY_SECRET: undefined,
    NMX_STUN: undefined,
    NMX_STUN_ALT: undefined,
    NMX_TURN: undefined,
    NMX_TURN_USER: undefined,
    NMX_TURN_PASS: undefined,
    NMX_TURN_REALM: undefined,
    NMX_PUBLIC_IP: undefined,
    NMX_PEER_PUBLIC: undefined,
  });
  const full = readPeerEnv({
    ...PEER,
    NMX_RUN: 'r1',
    NMX_RENDEZVOUS: '',
    NMX_TIMEOUT_MS: '600',
    NMX_BUDGET_MS: '8000',
    NMX_DEADLINE_MS: '9500',
    NMX_SPAWNED_AT_MS: '1764400000000',
    NMX_NAT: 'full-cone',
    NMX_RELAY: '203.0.113.10:12000',
    NMX_RELAY_CA: '/tmp/natmatrix/relay-ca.pem',
    NMX_STUN: '203.0.113.12:3478',
    NMX_STUN_ALT: '203.0.113.13:3479',
    NMX_PUBLIC_IP: '198.51.100.7',
    NMX_PEER_PUBLIC: '198.51.100.8:40000',
  });
  t.is(full.NMX_RUN, 'r1');
  t.is(full.NMX_RENDEZVOUS, undefined, 'an empty variable counts as absent');
  t.is(full.NMX_TIMEOUT_MS, 600);
  t.is(full.NMX_BUDGET_MS, 8000);
  t.is(full.NMX_DEADLINE_MS, 9500);
  t.is(full.NMX_SPAWNED_AT_MS, 1764400000000);
  t.deepEqual(full.NMX_RELAY, { address: '203.0.113.10', port: 12000 });
  t.is(full.NMX_RELAY_CA, '/tmp/natmatrix/relay-ca.pem');
  t.deepEqual(full.NMX_STUN_ALT, { address: '203.0.113.13', port: 3479 });
  t.is(full.NMX_PUBLIC_IP, '198.51.100.7');
  t.deepEqual(full.NMX_PEER_PUBLIC, { address: '198.51.100.8', port: 40000 });
});

test('readPeerEnv names the variable that is missing or invalid, with what it expected', (t) => {
  const error = (env: Record<string, string | undefined>): EnvError | undefined => t.throws(() => readPeerEnv(env), { instanceOf: EnvError });
  const missing = error({ ...PEER, NMX_ROLE: undefined });
  t.is(missing?.variable, 'NMX_ROLE');
  t.is(missing?.message, 'NMX_ROLE is not set (expected "a" or "b")');
  t.is(error({ ...PEER, NMX_LOCAL_PORT: 'http' })?.message, 'NMX_LOCAL_PORT is "http", expected an integer 0..65535');
  t.is(error({ ...PEER, NMX_SECRET: '' })?.message, 'NMX_SECRET is not set');
  // each optional variable is read by its own reader: a bad value is reported under its name
  const bad: Array<[PeerVariable, string]> = [
    ['NMX_RENDEZVOUS', 'rdv:3478'],
    ['NMX_TIMEOUT_MS', '1.5'],
    ['NMX_WAIT_MS', '0'],
    ['NMX_BUDGET_MS', 'soon'],
    ['NMX_DEADLINE_MS', '-1'],
    ['NMX_SPAWNED_AT_MS', 'now'],
    ['NMX_HOLD_MS', '99999999'],
    ['NMX_KEEPALIVE_MS', 'x'],
    ['NMX_RELAY', '203.0.113.10'],
    ['NMX_STUN', 'stun:3478'],
    ['NMX_STUN_ALT', '1.2.3.4:0'],
    ['NMX_TURN', '1.2.3.4:70000'],
    ['NMX_PUBLIC_IP', '198.51.100.7:1'],
    ['NMX_PEER_PUBLIC', 'peer'],
  ];
  for (const [name, value] of bad) {
    const e = error({ ...PEER, [name]: value });
    t.is(e?.variable, name, `${name}=${value}`);
    t.true(e?.message.startsWith(`${name} is `), e?.message);
  }
});

test('readPeerConfig (the shipped agents\' view): defaults and named errors', (t) => {
  const env = { NMX_ROLE: 'b', NMX_SESSION: 's', NMX_RENDEZVOUS: '10.0.0.1:3478', NMX_SECRET: 'x', NMX_LOCAL_PORT: '40000' };
  t.deepEqual(readPeerConfig(env), {
    role: 'b',
    session: 's',
    rendezvous: { address: '10.0.0.1', port: 3478 },
    secret: 'x',
    localPort: 40000,
    timeoutMs: 1000,
    waitMs: 10000,
    holdMs: 0,
    keepaliveMs: 0,
  });
  const variableOf = (e: Record<string, string | undefined>): string => {
    const err = t.throws(() => readPeerConfig(e), { instanceOf: EnvError });
    return err?.variable ?? '';
  };
  t.is(variableOf({ ...env, NMX_ROLE: undefined }), 'NMX_ROLE');
  t.is(variableOf({ ...env, NMX_ROLE: 'c' }), 'NMX_ROLE');
  t.is(variableOf({ ...env, NMX_SESSION: '' }), 'NMX_SESSION');
  t.is(variableOf({ ...env, NMX_RENDEZVOUS: 'rdv:3478' }), 'NMX_RENDEZVOUS');
  t.is(variableOf({ ...env, NMX_SECRET: undefined }), 'NMX_SECRET');
  t.is(variableOf({ ...env, NMX_LOCAL_PORT: '70000' }), 'NMX_LOCAL_PORT');
  t.is(variableOf({ ...env, NMX_TIMEOUT_MS: '1.5' }), 'NMX_TIMEOUT_MS');
  t.is(variableOf({ ...env, NMX_WAIT_MS: '0' }), 'NMX_WAIT_MS');
  t.deepEqual(readRendezvousConfig({ NMX_SECRET: 'x' }).listen, { address: '0.0.0.0', port: 3478 });
});

test('configOrExit: a bad variable is one stderr line naming it and exit 2, no stdout', async (t) => {
  const res = await startSdkAgent('connected', { ...PEER, NMX_LOCAL_PORT: 'http' });
  t.is(res.exitCode, EXIT_CODE.badEnvironment);
  t.is(res.stdout, '');
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, res.stderr);
  t.regex(lines[0] ?? '', /^\S+ \[sdk-agent\] bad environment: NMX_LOCAL_PORT is "http", expected an integer 0\.\.65535$/);
  const noRole = await startSdkAgent('connected', { ...PEER, NMX_ROLE: undefined });
  t.is(noRole.exitCode, 2);
  t.regex(noRole.stderr, /bad environment: NMX_ROLE is not set/);
  // only an EnvError is the environment's fault: anything else propagates
  t.throws(() => configOrExit(() => { throw new TypeError('a bug'); }, 'x'), { instanceOf: TypeError, message: 'a bug' });
});

// ------------------------------------------------------------------------------------------------
// A tiny agent written with the SDK, as a real process

const SDK_AGENT = 'test/fixtures/agents/sdk-agent.ts';

function startSdkAgent(mode: string, env: Record<string, string | undefined>) {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v;
  return execa(process.execPath, ['--import', 'tsx', SDK_AGENT, mode], { cwd: ROOT, env: { ...cleanEnv(), ...vars }, extendEnv: false, reject: false, timeout: 20_000 });
}


test('connected: exactly the verdict line on stdout, exit 0; failed: exit 1; fault: exit 3', async (t) => {
  const ok = await startSdkAgent('connected', PEER);
  t.is(ok.stdout, '{"ok":true,"path":"direct-udp","peer":"203.0.113.22:40000","timeToDirectMs":12.3}', ok.stderr);
  t.is(ok.exitCode, 0);
  t.is(readVerdict(ok.stdout).problem, null);
  t.is(readVerdict(ok.stdout).verdict?.ok, true);

  const no = await startSdkAgent('failed', PEER);
  t.is(no.stdout, '{"ok":false,"path":null,"peer":null,"reason":"no pong within 600 ms of learning peer 203.0.113.21:40000 (sent 30 pings)"}', no.stderr);
  t.is(no.exitCode, 1);
  t.is(readVerdict(no.stdout).verdict?.ok, false);

  const broken = await startSdkAgent('fault', PEER);
  t.is(broken.stdout, '{"ok":false,"path":null,"peer":null,"reason":"cannot bind UDP 0.0.0.0:40000: EADDRINUSE"}');
  t.is(broken.exitCode, 3);
});

for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  test(`${signal}: the agent logs it and exits ${code} without a verdict`, async (t) => {
    const child = startSdkAgent('wait', PEER);
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('waiting')) resolve();
      });
      child.once('exit', () => reject(new Error(`ended before waiting: ${err}`)));
    });
    const sent = Date.now();
    child.kill(signal);
    const res = await child;
    t.true(Date.now() - sent < 2000);
    t.is(res.exitCode, code);
    t.is(res.signal, undefined);
    t.is(res.stdout, '');
    t.regex(res.stderr, new RegExp(`\\[b\\] ${signal}: exiting`));
  });
}


// ------------------------------------------------------------------------------------------------
// Helpers of the wire tests

const msg = (over: Partial<Message> = {}): Message => ({ t: 'ping', s: 'sess-1', r: 'a', ts: Date.now(), n: 1, ...over });

/** Independent implementation of the wire format, to sign arbitrary bytes. */
function rawSign(json: string, secret = SECRET): Buffer {
  const sig = createHmac('sha256', secret).update(json).digest('hex');
  return Buffer.from(`${sig}.${json}`, 'utf8');
}

// ------------------------------------------------------------------------------------------------
// The wire format and endpoints (the shipped agents' tests, moved here with the module they test)

test('sign/verify round trip, and the wire format is <hex hmac>.<json>', (t) => {
  const m = msg({ t: 'peer', r: 'rdv', ep: '203.0.113.22:40000', n: 7 });
  const wire = sign(m, SECRET);
  const text = wire.toString('utf8');
  const dot = text.indexOf('.');
  t.is(dot, 64);
  const json = text.slice(dot + 1);
  t.is(text.slice(0, dot), createHmac('sha256', SECRET).update(json).digest('hex'));
  t.deepEqual(JSON.parse(json), m);
  const res = verify(wire, SECRET);
  t.true(res.ok);
  if (res.ok) t.deepEqual(res.msg, m);
  // an independently signed message verifies too
  t.true(verify(rawSign(JSON.stringify(msg())), SECRET).ok);
});

test('verify rejects forged, truncated and unsigned datagrams', (t) => {
  const wire = sign(msg(), SECRET);
  const reason = (d: Buffer): string => {
    const r = verify(d, SECRET);
    t.false(r.ok);
    return r.ok ? '' : r.reason;
  };
  // wrong secret
  t.is(reason(sign(msg(), 'other-secret')), 'bad signature');
  // tampered body (change the sequence number)
  t.is(reason(Buffer.from(wire.toString().replace('"n":1', '"n":2'))), 'bad signature');
  // signature of another message
  const other = sign(msg({ n: 99 }), SECRET).subarray(0, 64);
  t.is(reason(Buffer.concat([other, wire.subarray(64)])), 'bad signature');
  // truncated signature
  t.regex(reason(Buffer.concat([wire.subarray(0, 40), wire.subarray(64)])), /malformed signature/);
  // non-hex signature of the right length
  t.regex(reason(Buffer.concat([Buffer.from('z'.repeat(64)), wire.subarray(64)])), /malformed signature/);
  // unsigned JSON, random bytes, empty, oversized
  t.regex(reason(Buffer.from(JSON.stringify(msg()))), /unsigned|malformed/);
  t.truthy(reason(randomBytes(100)));
  t.is(reason(Buffer.alloc(0)), 'empty datagram');
  t.regex(reason(Buffer.alloc(5000, 0x41)), /oversized/);
  // correctly signed, but not a valid message
  t.regex(reason(rawSign('not json{')), /unparsable/);
  t.regex(reason(rawSign('[1,2]')), /not an object/);
  t.regex(reason(rawSign(JSON.stringify({ ...msg(), t: 'hello' }))), /bad field t/);
  t.regex(reason(rawSign(JSON.stringify({ ...msg(), r: 'c' }))), /bad field r/);
  t.regex(reason(rawSign(JSON.stringify({ ...msg(), ts: 'now' }))), /bad field ts/);
  t.regex(reason(rawSign(JSON.stringify({ ...msg(), n: -1 }))), /bad field n/);
  t.regex(reason(rawSign(JSON.stringify({ ...msg(), s: '' }))), /bad field s/);
  t.regex(reason(rawSign(JSON.stringify(msg({ t: 'peer', r: 'rdv', ep: 'nowhere' })))), /bad field ep/);
});

test('verify rejects stale/future timestamps, other sessions and own role', (t) => {
  const now = 1_700_000_000_000;
  const at = (ts: number, opts = {}) => verify(sign(msg({ ts }), SECRET), SECRET, { now, ...opts });
  t.true(at(now - 29_000).ok);
  t.true(at(now + 29_000).ok);
  const stale = at(now - 31_000);
  t.false(stale.ok);
  t.regex(stale.ok ? '' : stale.reason, /stale timestamp/);
  t.false(at(now + 31_000).ok);
  t.false(verify(sign(msg({ ts: Date.now() - 60_000 }), SECRET), SECRET).ok, 'default clock is Date.now()');

  const wrongSession = at(now, { session: 'sess-2' });
  t.false(wrongSession.ok);
  t.regex(wrongSession.ok ? '' : wrongSession.reason, /wrong session/);
  t.true(at(now, { session: 'sess-1' }).ok);
  const own = at(now, { self: 'a' });
  t.false(own.ok);
  t.regex(own.ok ? '' : own.reason, /own role/);
  t.true(at(now, { self: 'b' }).ok);
});

test('endpoint parsing and formatting', (t) => {
  t.deepEqual(parseEndpoint('203.0.113.22:40000'), { address: '203.0.113.22', port: 40000 });
  t.deepEqual(parseEndpoint('0.0.0.0:1'), { address: '0.0.0.0', port: 1 });
  t.is(formatEndpoint(parseEndpoint('10.0.0.1:65535')), '10.0.0.1:65535');
  for (const bad of ['', '1.2.3.4', '1.2.3.4:', ':80', 'localhost:80', '256.1.1.1:80', '01.2.3.4:80', '1.2.3:80', '1.2.3.4:0', '1.2.3.4:65536', '1.2.3.4:8x', '1.2.3.4:-1', '[::1]:80', ' 1.2.3.4:80']) {
    t.is(tryParseEndpoint(bad), null, bad);
    t.throws(() => parseEndpoint(bad), undefined, bad);
  }
  t.deepEqual(parseEndpoint('0.0.0.0:0', { allowPortZero: true }), { address: '0.0.0.0', port: 0 });
});



test('verify with a replay guard accepts a datagram once and rejects its exact repeat', (t) => {
  const secret = 'k';
  const now = Date.now();
  const guard = new ReplayGuard();
  const first = sign({ t: 'peer', s: 'sess', r: 'rdv', ts: now, n: 1, ep: '203.0.113.21:40000' }, secret);
  const second = sign({ t: 'peer', s: 'sess', r: 'rdv', ts: now, n: 2, ep: '203.0.113.21:40000' }, secret);
  t.true(verify(first, secret, { replay: guard, now }).ok);
  const again = verify(Buffer.from(first), secret, { replay: guard, now: now + 10 });
  t.false(again.ok);
  t.regex(again.ok ? '' : again.reason, /replayed datagram \(peer #1 from rdv was already accepted\)/);
  t.true(verify(second, secret, { replay: guard, now }).ok, 'a new datagram with the same content is no replay');
  // a datagram that failed another check is not remembered: it cannot block the genuine one
  const stale = sign({ t: 'ping', s: 'sess', r: 'a', ts: now - 60_000, n: 3 }, secret);
  t.false(verify(stale, secret, { replay: guard, now }).ok);
  t.is(guard.size, 2);
});

// ------------------------------------------------------------------------------------------------
// The SDK stays cheap to load: node: built-ins only, nothing of the harness

test('the SDK bundles from its own folder and node: built-ins only', async (t) => {
  const { build } = await import('esbuild');
  const r = await build({ entryPoints: ['agents/sdk/index.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', write: false, metafile: true, logLevel: 'silent', absWorkingDir: ROOT });
  const inputs = Object.keys(r.metafile.inputs);
  t.true(inputs.length > 3);
  for (const file of inputs) t.true(file.startsWith('agents/sdk/'), file);
  const external = Object.values(r.metafile.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path));
  t.true(external.length > 0);
  for (const path of external) t.regex(path, /^node:/);
});
