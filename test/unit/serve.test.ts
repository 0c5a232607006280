// The SDK's serve mode (agents/sdk/serve.ts, the protocol is SERVE's in agents/sdk/contract.ts): a peer
// written with runPeer (test/fixtures/serve-sdk-agent.ts, whose tries do what their NMX_SESSION says)
// started with NMX_SERVE=1 prints the ready line, then answers every try line on stdin with one reply
// line; a try after a failed one behaves as in a fresh process (the same fixed port binds again); a bad
// environment is answered exit 2 and the process keeps serving; a stop ends the try (143) or, when the
// handler ignores it, the process; a try that leaves a socket or timer open is the process's last; a bad
// line ends the process with 2, the end of stdin with 0. Without NMX_SERVE the same peer is one-shot.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import test, { type ExecutionContext } from 'ava';
import { EXIT_CODE, parseServeLine, SERVE, type ServeReply } from '../../agents/sdk/index.ts';
import { cleanEnv, ROOT } from './agent-process.ts';

const AGENT = 'test/fixtures/serve-sdk-agent.ts';
/** How long any wait may take before the test fails instead of hanging (no assertion on durations). */
const WAIT_MS = 10_000;
/** Starting Node with tsx while the other tests of the file do the same. */
const START_MS = 20_000;

const OK_VERDICT = { ok: true, path: 'direct-udp', peer: '203.0.113.21:40000', timeToDirectMs: 1 };
const FAIL_VERDICT = { ok: false, path: null, peer: null, reason: 'no pong' };

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** An agent process: its stdout lines one at a time, its stdin, how it ended. */
interface Agent {
  child: ChildProcessWithoutNullStreams;
  /** the next stdout line; rejects when stdout ends first or nothing comes within `ms` */
  line(ms?: number): Promise<string>;
  /** the next stdout line, parsed as a reply */
  reply(ms?: number): Promise<ServeReply>;
  /** write one line (an object is JSON-encoded) to stdin */
  send(msg: string | object): void;
  /** how the process ended, once it did (and its stdout was read to the end); rejects after `ms` */
  ended(ms?: number): Promise<Ended>;
  /** every stdout line so far, including the ones already taken with line() */
  stdout: string[];
  stderr(): string;
  /** resolves once stderr matches `re`; rejects after `ms` */
  stderrMatches(re: RegExp, ms?: number): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** How many agent processes of this file run at once (the tests run concurrently; dozens of Node
 * processes starting with tsx on a small or busy machine would make the waits below time out). */
const MAX_AGENTS = 4;
let agents = 0;
const queued: Array<() => void> = [];

/** A place among the MAX_AGENTS; the function returned gives it back (to the next in line, if any). */
async function agentSlot(): Promise<() => void> {
  if (agents < MAX_AGENTS) agents++;
  else await new Promise<void>((resolve) => queued.push(resolve));
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = queued.shift();
    if (next) next();
    else agents--;
  };
}

/** Start the fixture agent with `env` on top of the test's environment without NMX_ variables (once
 * fewer than MAX_AGENTS run); it is SIGKILLed by its PID at teardown if still running. */
async function startAgent(t: ExecutionContext, env: Record<string, string>): Promise<Agent> {
  const release = await agentSlot();
  const child = spawn(process.execPath, ['--import', 'tsx', AGENT], { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {}); // a line written after the agent exited: EPIPE, which the test's assertions notice otherwise
  let stderr = '';
  const stderrWatchers = new Set<() => void>();
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
    for (const w of stderrWatchers) w();
  });

  const stdout: string[] = [];
  const buffered: string[] = [];
  const waiting: Array<(line: string | null) => void> = [];
  let stdoutEnded = false;
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  lines.on('line', (line) => {
    stdout.push(line);
    const w = waiting.shift();
    if (w) w(line);
    else buffered.push(line);
  });
  lines.on('close', () => {
    stdoutEnded = true;
    for (const w of waiting.splice(0)) w(null);
  });

  const closed = new Promise<Ended>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  void closed.then(release);
  child.on('error', (err) => {
    stderr += `spawn error: ${err.message}\n`;
    release();
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await closed;
    release();
  });

  const line = async (ms = WAIT_MS): Promise<string> => {
    const got = buffered.shift();
    if (got !== undefined) return got;
    if (stdoutEnded) throw new Error(`stdout ended; stderr: ${stderr}`);
    const next = await withTimeout(new Promise<string | null>((resolve) => waiting.push(resolve)), ms, `stdout line (stderr: ${stderr})`);
    if (next === null) throw new Error(`stdout ended; stderr: ${stderr}`);
    return next;
  };
  return {
    child,
    line,
    reply: async (ms) => JSON.parse(await line(ms)) as ServeReply,
    send: (msg) => child.stdin.write(`${typeof msg === 'string' ? msg : JSON.stringify(msg)}\n`),
    ended: (ms = WAIT_MS) => withTimeout(closed, ms, `exit (stderr: ${stderr})`),
    stdout,
    stderr: () => stderr,
    stderrMatches: (re, ms = WAIT_MS) => {
      let watcher: (() => void) | undefined;
      const matched = new Promise<void>((resolve) => {
        watcher = () => {
          if (re.test(stderr)) resolve();
        };
        stderrWatchers.add(watcher);
        watcher();
      });
      return withTimeout(matched, ms, `stderr matching ${re} (stderr: ${stderr})`).finally(() => {
        if (watcher) stderrWatchers.delete(watcher);
      });
    },
  };
}

/** A serving agent (NMX_SERVE=1, NMX_ROLE=a), once it printed its first line, which must be the ready line. */
async function startServing(t: ExecutionContext): Promise<Agent> {
  const agent = await startAgent(t, { [SERVE.env]: '1', NMX_ROLE: 'a' });
  t.is(await agent.line(START_MS), SERVE.ready, 'the first stdout line is the ready line');
  return agent;
}

/** A try line: NMX_SESSION says what the fixture does; the other variables readPeerEnv requires are set. */
function tryMsg(id: string, session: string, env: Record<string, string> = {}): object {
  return { try: id, env: { NMX_SESSION: session, NMX_SECRET: 'not-so-secret', NMX_LOCAL_PORT: '0', ...env } };
}

/** A UDP port on 127.0.0.1 that is free now, below the ephemeral range (so that no port-0 bind of a
 * test running alongside takes it) and different for every call. */
const handedOut = new Set<number>();
async function fixedFreePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    const s = dgram.createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => s.close(() => resolve()));
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// parseServeLine

test('parseServeLine: a try, a stop, and what is neither', (t) => {
  t.deepEqual(parseServeLine('{"try":"t1","env":{"NMX_SESSION":"s1","NMX_LOCAL_PORT":"40000"}}'), {
    try: { try: 't1', env: { NMX_SESSION: 's1', NMX_LOCAL_PORT: '40000' } },
  });
  t.deepEqual(parseServeLine('{"try":"t2","env":{}}'), { try: { try: 't2', env: {} } });
  t.deepEqual(parseServeLine('{"stop":"t1"}'), { stop: 't1' });

  const bad = (line: string): string => {
    const r = parseServeLine(line);
    t.true('bad' in r, `${line} is bad`);
    return 'bad' in r ? r.bad : '';
  };
  t.regex(bad('hello'), /^not JSON: "hello"$/);
  t.regex(bad('{"try":"t1","env":'), /^not JSON/);
  t.regex(bad('{"try":"t1","env":{"NMX_SESSION":"s","NMX_LOCAL_PORT":40000}}'), /^neither a try nor a stop/, 'an env value that is not a string');
  t.regex(bad('{"try":"t1","env":{"NMX_SESSION":null}}'), /^neither a try nor a stop/);
  t.regex(bad('{"try":"t1","env":["NMX_SESSION=s"]}'), /^neither a try nor a stop/, 'an array env');
  t.regex(bad('{"try":"t1","env":null}'), /^neither a try nor a stop/);
  t.regex(bad('{"try":"t1","env":"NMX_SESSION=s"}'), /^neither a try nor a stop/);
  t.regex(bad('{"try":"t1"}'), /^neither a try nor a stop/, 'a try without env');
  t.regex(bad('{"try":1,"env":{}}'), /^neither a try nor a stop/, 'a try id that is not a string');
  t.regex(bad('{"stop":1}'), /^neither a try nor a stop/);
  t.regex(bad('["try","t1"]'), /^neither a try nor a stop/);
  t.regex(bad('null'), /^neither a try nor a stop/);
  t.regex(bad('"t1"'), /^neither a try nor a stop/);
});

// ------------------------------------------------------------------------------------------------
// Serve mode

test('serve mode: the ready line first, then one reply per try with its id, exit code and verdict (ok, fail, ok in one process)', async (t) => {
  const agent = await startServing(t);
  agent.send(tryMsg('t1', 'ok'));
  t.deepEqual(await agent.reply(), { try: 't1', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
  agent.send(tryMsg('t2', 'fail'));
  t.deepEqual(await agent.reply(), { try: 't2', exit: EXIT_CODE.failed, verdict: FAIL_VERDICT });
  // a try after a failed one is answered as the first was
  agent.send(''); // blank lines are ignored
  agent.send(tryMsg('t3', 'ok'));
  t.deepEqual(await agent.reply(), { try: 't3', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
  agent.child.stdin.end();
  t.deepEqual(await agent.ended(), { code: 0, signal: null });
  t.is(agent.stdout.length, 4, `the ready line and three replies, nothing else: ${JSON.stringify(agent.stdout)}`);
});

test('serve mode: two tries binding the same fixed UDP port in one process both bind it (the first closed its socket); a try\'s env overrides the process\'s', async (t) => {
  const port = await fixedFreePort();
  const agent = await startServing(t);
  agent.send(tryMsg('u1', 'udp', { NMX_LOCAL_PORT: String(port) }));
  const first = await agent.reply();
  t.deepEqual(first, { try: 'u1', exit: EXIT_CODE.connected, verdict: { ok: true, path: 'direct-udp', peer: `127.0.0.1:${port}`, port, role: 'a' } }, agent.stderr());
  t.false('last' in first, 'a try that closed its socket is not the last');
  agent.send(tryMsg('u2', 'udp', { NMX_LOCAL_PORT: String(port), NMX_ROLE: 'b' }));
  const second = await agent.reply();
  t.deepEqual(second, { try: 'u2', exit: EXIT_CODE.connected, verdict: { ok: true, path: 'direct-udp', peer: `127.0.0.1:${port}`, port, role: 'b' } }, agent.stderr());
  // the process still serves, with the process's NMX_ROLE again for a try that does not set one
  agent.send(tryMsg('u3', 'udp', { NMX_LOCAL_PORT: String(port) }));
  t.deepEqual(await agent.reply(), { try: 'u3', exit: EXIT_CODE.connected, verdict: { ok: true, path: 'direct-udp', peer: `127.0.0.1:${port}`, port, role: 'a' } });
  agent.child.stdin.end();
  t.deepEqual(await agent.ended(), { code: 0, signal: null });
});

test('serve mode: a try with a bad environment is answered exit 2 without a verdict, and the process keeps serving', async (t) => {
  const agent = await startServing(t);
  agent.send(tryMsg('b1', 'ok', { NMX_LOCAL_PORT: 'http' }));
  t.deepEqual(await agent.reply(), { try: 'b1', exit: EXIT_CODE.badEnvironment });
  await agent.stderrMatches(/try b1: bad environment: NMX_LOCAL_PORT is "http"/); // stderr may come after the reply
  agent.send({ try: 'b2', env: { NMX_SESSION: 'ok', NMX_LOCAL_PORT: '0' } }); // no NMX_SECRET
  t.deepEqual(await agent.reply(), { try: 'b2', exit: EXIT_CODE.badEnvironment });
  agent.send(tryMsg('b3', 'ok'));
  t.deepEqual(await agent.reply(), { try: 'b3', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
  agent.send(tryMsg('b4', 'ok', { NMX_ROLE: 'c' }));
  t.deepEqual(await agent.reply(), { try: 'b4', exit: EXIT_CODE.badEnvironment });
  agent.send(tryMsg('b5', 'fail'));
  t.deepEqual(await agent.reply(), { try: 'b5', exit: EXIT_CODE.failed, verdict: FAIL_VERDICT });
  agent.child.stdin.end();
  t.deepEqual(await agent.ended(), { code: 0, signal: null });
});

test('serve mode: a stop ends the running try (exit 143, no verdict) and the process keeps serving', async (t) => {
  const agent = await startServing(t);
  agent.send({ stop: 'nothing-running' }); // a stop when no try runs is ignored
  agent.send(tryMsg('w1', 'wait'));
  await agent.stderrMatches(/^waiting$/m); // wait until the try runs: serve.ts ignores a stop that comes before its try started
  agent.send({ stop: 'w0' }); // a stop of another try does not end this one (it is answered only once stopped)
  agent.send({ stop: 'w1' });
  t.deepEqual(await agent.reply(), { try: 'w1', exit: EXIT_CODE.sigterm });
  agent.send({ stop: 'w1' }); // a stop of a try that has ended is ignored
  agent.send(tryMsg('w2', 'ok'));
  t.deepEqual(await agent.reply(), { try: 'w2', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
  // and the next try can be stopped as well
  agent.send(tryMsg('w3', 'wait'));
  await agent.stderrMatches(/^waiting\n(.|\n)*^waiting$/m);
  agent.send({ stop: 'w3' });
  t.deepEqual(await agent.reply(), { try: 'w3', exit: EXIT_CODE.sigterm });
  agent.child.stdin.end();
  t.deepEqual(await agent.ended(), { code: 0, signal: null });
  t.is(agent.stdout.length, 4, `the ready line and three replies: ${JSON.stringify(agent.stdout)}`);
});

test('serve mode: a try that ignores its stop ends the process with 143 and no reply', async (t) => {
  const agent = await startServing(t);
  agent.send(tryMsg('s1', 'ok'));
  t.deepEqual(await agent.reply(), { try: 's1', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
  agent.send(tryMsg('s2', 'stubborn'));
  await agent.stderrMatches(/^waiting$/m);
  agent.send({ stop: 's2' });
  t.deepEqual(await agent.ended(), { code: EXIT_CODE.sigterm, signal: null });
  t.is(agent.stdout.length, 2, `no reply for the stubborn try: ${JSON.stringify(agent.stdout)}`);
  t.regex(agent.stderr(), /try s2 did not end within \d+ ms of being stopped: exiting/);
});

for (const leak of [
  { session: 'leak-timer', kind: /Timeout ×1/ },
  { session: 'leak-socket', kind: /UDPWrap ×1/ },
]) {
  for (const first of [true, false]) {
    test(`serve mode: a try that leaves ${leak.session.replace('leak-', 'a ')} open gets "last": true and the process exits 0 (${first ? 'its first try' : 'after a clean try'})`, async (t) => {
      const agent = await startServing(t);
      if (!first) {
        agent.send(tryMsg('l0', 'ok'));
        t.deepEqual(await agent.reply(), { try: 'l0', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
      }
      agent.send(tryMsg('l1', leak.session));
      const reply = await agent.reply();
      t.is(reply.try, 'l1');
      t.is(reply.exit, EXIT_CODE.connected);
      t.is(reply.verdict?.ok, true);
      t.is(reply.last, true, `the reply says last: ${JSON.stringify(reply)}`);
      // a try sent after the last reply is not served: the process exits without another line
      agent.send(tryMsg('l2', 'ok'));
      t.deepEqual(await agent.ended(), { code: 0, signal: null });
      t.is(agent.stdout.length, first ? 2 : 3, `no reply after the last: ${JSON.stringify(agent.stdout)}`);
      t.regex(agent.stderr(), new RegExp(`try l1 left ${leak.kind.source} open: exiting`));
    });
  }
}

test('serve mode: a handler that throws ends the process with exit 3 and no reply', async (t) => {
  const agent = await startServing(t);
  agent.send(tryMsg('x1', 'throw'));
  t.deepEqual(await agent.ended(), { code: EXIT_CODE.fault, signal: null });
  t.deepEqual(agent.stdout, [SERVE.ready]);
  t.regex(agent.stderr(), /try x1 threw: Error: the handler threw/);
});

for (const [what, line] of [
  ['not JSON', 'hello'],
  ['a try whose env has a number', '{"try":"g1","env":{"NMX_SESSION":"ok","NMX_SECRET":"s","NMX_LOCAL_PORT":0}}'],
  ['a try with an array env', '{"try":"g1","env":["NMX_SESSION=ok"]}'],
  ['a JSON array', '["try","g1"]'],
] as const) {
  test(`serve mode: a line that is not a try or a stop (${what}) ends the process with exit 2`, async (t) => {
    const agent = await startServing(t);
    agent.send(tryMsg('g0', 'ok'));
    t.deepEqual(await agent.reply(), { try: 'g0', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
    agent.send(line);
    t.deepEqual(await agent.ended(), { code: EXIT_CODE.badEnvironment, signal: null });
    t.is(agent.stdout.length, 2, `nothing after the first reply: ${JSON.stringify(agent.stdout)}`);
    t.regex(agent.stderr(), /bad line on stdin, .*: exiting/);
  });
}

test('serve mode: the end of stdin lets the running try finish, then the process exits 0', async (t) => {
  const agent = await startServing(t);
  agent.send(tryMsg('e1', 'fail'));
  agent.child.stdin.end(`${JSON.stringify(tryMsg('e2', 'ok'))}\n`); // the second try and the end of stdin at once
  t.deepEqual(await agent.reply(), { try: 'e1', exit: EXIT_CODE.failed, verdict: FAIL_VERDICT });
  t.deepEqual(await agent.reply(), { try: 'e2', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
  t.deepEqual(await agent.ended(), { code: 0, signal: null });
  t.is(agent.stdout.length, 3);
});

test('serve mode: a stop that comes with its try, or while it waits behind another, ends it before it starts (143)', async (t) => {
  const agent = await startServing(t);
  // one write: the try and its stop arrive in the same read of stdin
  agent.send(`${JSON.stringify(tryMsg('q1', 'wait'))}\n${JSON.stringify({ stop: 'q1' })}`);
  t.deepEqual(await agent.reply(), { try: 'q1', exit: EXIT_CODE.sigterm });
  // a try queued behind a running one, stopped before its turn
  agent.send(`${JSON.stringify(tryMsg('q2', 'fail'))}\n${JSON.stringify(tryMsg('q3', 'wait'))}\n${JSON.stringify({ stop: 'q3' })}`);
  t.deepEqual(await agent.reply(), { try: 'q2', exit: EXIT_CODE.failed, verdict: FAIL_VERDICT });
  t.deepEqual(await agent.reply(), { try: 'q3', exit: EXIT_CODE.sigterm });
  agent.send(tryMsg('q4', 'ok'));
  t.deepEqual(await agent.reply(), { try: 'q4', exit: EXIT_CODE.connected, verdict: OK_VERDICT });
});

test('serve mode: the end of stdin while a try that holds nothing open runs: the process stays up for it (no exit without its reply)', async (t) => {
  const agent = await startServing(t);
  // "stubborn" holds no socket or timer: only a pending promise, which would not keep Node alive
  agent.child.stdin.end(`${JSON.stringify(tryMsg('h1', 'stubborn'))}\n`);
  await agent.stderrMatches(/^waiting$/m);
  // nothing stops it: the process must stay up for it (the test's teardown kills it), not exit with no reply
  await t.throwsAsync(agent.ended(1500), { message: /^no exit/ });
  t.deepEqual(agent.stdout, [SERVE.ready]);
});

test('serve mode: the end of stdin before any try: exit 0 after the ready line', async (t) => {
  const agent = await startServing(t);
  agent.child.stdin.end();
  t.deepEqual(await agent.ended(), { code: 0, signal: null });
  t.deepEqual(agent.stdout, [SERVE.ready]);
});

// ------------------------------------------------------------------------------------------------
// One-shot mode

const ONE_SHOT = { NMX_ROLE: 'a', NMX_SECRET: 'not-so-secret', NMX_LOCAL_PORT: '0' };

for (const [session, code, verdict] of [
  ['ok', EXIT_CODE.connected, OK_VERDICT],
  ['fail', EXIT_CODE.failed, FAIL_VERDICT],
] as const) {
  test(`one-shot mode (no NMX_SERVE): NMX_SESSION=${session} prints exactly its verdict line and exits ${code}`, async (t) => {
    const agent = await startAgent(t, { ...ONE_SHOT, NMX_SESSION: session });
    t.deepEqual(await agent.ended(START_MS), { code, signal: null }, agent.stderr());
    t.is(agent.stdout.length, 1, `one line, no ready line: ${JSON.stringify(agent.stdout)}`);
    t.deepEqual(JSON.parse(agent.stdout[0] ?? ''), verdict);
  });
}

test('one-shot mode: a handler that throws is a fault, exit 3 with no verdict (never the clean failure\'s 1)', async (t) => {
  const agent = await startAgent(t, { ...ONE_SHOT, NMX_SESSION: 'throw' });
  t.deepEqual(await agent.ended(START_MS), { code: EXIT_CODE.fault, signal: null }, agent.stderr());
  t.deepEqual(agent.stdout, []);
  t.regex(agent.stderr(), /the try threw: Error: the handler threw/);
});

test('one-shot mode: a bad environment is exit 2 with no stdout, and stdin is not read', async (t) => {
  const agent = await startAgent(t, { ...ONE_SHOT, NMX_SESSION: 'ok', NMX_SECRET: '' });
  agent.send(tryMsg('t1', 'ok')); // one-shot: a try line on stdin means nothing
  t.deepEqual(await agent.ended(START_MS), { code: EXIT_CODE.badEnvironment, signal: null });
  t.deepEqual(agent.stdout, []);
  t.regex(agent.stderr(), /bad environment: NMX_SECRET is not set/);
});
