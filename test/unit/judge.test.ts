// judge: agent verdict lines → a try's outcome → a cell.
import test from 'ava';
import { judgeCell, judgeTry, median, peerAddress, readVerdict, wilson } from '../../harness/judge.ts';
import type { AgentExit, Attempt, Outcome } from '../../harness/types.ts';

const DEADLINE = 2500;

/** An agent exit whose verdict is read from `stdout` exactly as the harness would. */
function exit(role: 'a' | 'b', stdout: string, over: Partial<AgentExit> = {}): AgentExit {
  const { verdict, problem } = readVerdict(stdout);
  return {
    role,
    exitCode: 0,
    signal: null,
    timedOut: false,
    stopped: false,
    durationMs: 123,
    verdict,
    verdictProblem: problem,
    leftover: [],
    stderrTail: '',
    stdout: `cells/x/${role}.stdout`,
    stderr: `cells/x/${role}.stderr`,
    ...over,
  };
}

const okLine = (ttd?: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ok: true, path: 'direct-udp', peer: '203.0.113.21:40000', ...(ttd === undefined ? {} : { timeToDirectMs: ttd }), ...extra });
const failLine = (reason: string) => JSON.stringify({ ok: false, reason });

// ---------------------------------------------------------------------------------------------
// readVerdict

test('readVerdict: the last non-empty line wins', (t) => {
  const r = readVerdict(`${failLine('early')}\nsome log\n${okLine(42)}\n\n   \n`);
  t.is(r.problem, null);
  t.deepEqual(r.verdict, { ok: true, path: 'direct-udp', peer: '203.0.113.21:40000', timeToDirectMs: 42, reason: undefined });
});

test('readVerdict: an earlier valid line does not rescue a garbage last line', (t) => {
  const r = readVerdict(`${okLine(5)}\nSegmentation fault\n`);
  t.is(r.verdict, null);
  t.true(r.problem?.includes('not JSON'), r.problem ?? '');
  t.true(r.problem?.includes('Segmentation fault'), r.problem ?? '');
});

test('readVerdict: a garbage line is "not JSON", clipped', (t) => {
  const r = readVerdict('x'.repeat(500));
  t.is(r.verdict, null);
  t.true(r.problem?.startsWith('last stdout line is not JSON: '), r.problem ?? '');
  t.true((r.problem?.length ?? 0) < 150, r.problem ?? '');
});

test('readVerdict: JSON without "ok" is a problem naming the field', (t) => {
  const r = readVerdict('{"path":"direct-udp"}');
  t.is(r.verdict, null);
  t.truthy(r.problem);
  t.true(r.problem?.includes('is not valid'), r.problem ?? '');
  t.true(r.problem?.includes('ok'), r.problem ?? '');
});

test('readVerdict: JSON of the wrong shape is a problem', (t) => {
  for (const line of ['42', 'null', '"ok"', '[true]', '{"ok":"yes"}', '{"ok":true,"timeToDirectMs":-1}', '{"ok":true,"timeToDirectMs":"12"}']) {
    const r = readVerdict(line);
    t.is(r.verdict, null, line);
    t.truthy(r.problem, line);
  }
});

test('readVerdict: empty stdout is a problem', (t) => {
  for (const out of ['', '\n', '  \n\n\t\n']) {
    const r = readVerdict(out);
    t.is(r.verdict, null);
    t.is(r.problem, 'printed no verdict line on stdout');
  }
});

test('readVerdict: null optional fields and unknown extra fields are accepted', (t) => {
  const r = readVerdict('{"ok":false,"reason":"no path","path":null,"timeToDirectMs":null,"extra":1}');
  t.is(r.problem, null);
  t.deepEqual(r.verdict, { ok: false, path: undefined, peer: undefined, timeToDirectMs: undefined, reason: 'no path' });
});

test('readVerdict: surrounding whitespace and \\r are ignored', (t) => {
  const r = readVerdict(`  ${okLine(7)}\r\n`);
  t.is(r.problem, null);
  t.is(r.verdict?.timeToDirectMs, 7);
});

// ---------------------------------------------------------------------------------------------
// judgeTry

test('judgeTry: both ok with exit 0 → direct, time = the slower of the two', (t) => {
  const v = judgeTry(exit('a', okLine(12.5)), exit('b', okLine(30)), DEADLINE);
  t.deepEqual(v, { outcome: 'direct', reason: null, path: 'direct-udp', timeToDirectMs: 30, notes: [] });
  t.is(judgeTry(exit('a', okLine(80)), exit('b', okLine(3)), DEADLINE).timeToDirectMs, 80);
});

test('judgeTry: processes an agent left running are a note on any outcome, and part of the reason when it did not connect', (t) => {
  const left = { leftover: ['sleep', 'sleep', 'node'] };
  const v = judgeTry(exit('a', okLine(5), left), exit('b', okLine(6)), DEADLINE);
  t.is(v.outcome, 'direct');
  t.is(v.reason, null);
  t.deepEqual(v.notes, ['agent a left 3 processes running when it ended (sleep, node); the harness ended them']);
  const hung = judgeTry(exit('a', '', { timedOut: true, exitCode: null, signal: 'SIGKILL', leftover: ['sleep'] }), exit('b', failLine('gave up'), { exitCode: 1 }), DEADLINE);
  t.is(hung.outcome, 'error');
  t.regex(hung.reason ?? '', /agent a hung: still running at the 2500 ms deadline, killed; agent a left 1 process running when it ended \(sleep\); the harness ended it$/);
});

test('judgeTry: direct with only one time reported uses it; with none, null; path defaults to "direct"', (t) => {
  t.is(judgeTry(exit('a', okLine()), exit('b', okLine(9)), DEADLINE).timeToDirectMs, 9);
  const v = judgeTry(exit('a', '{"ok":true}'), exit('b', '{"ok":true}'), DEADLINE);
  t.is(v.outcome, 'direct');
  t.is(v.timeToDirectMs, null);
  t.is(v.path, 'direct');
});

test('judgeTry: both ok:false with exit 1 → failed, with both reasons', (t) => {
  const v = judgeTry(exit('a', failLine('no reply from 203.0.113.21'), { exitCode: 1 }), exit('b', failLine('punch window over'), { exitCode: 1 }), DEADLINE);
  t.is(v.outcome, 'failed');
  t.is(v.reason, 'a: no reply from 203.0.113.21; b: punch window over');
  t.is(v.path, null);
  t.is(v.timeToDirectMs, null);
});

test('judgeTry: failed without reasons says so', (t) => {
  const v = judgeTry(exit('a', '{"ok":false}', { exitCode: 1 }), exit('b', '{"ok":false}', { exitCode: 1 }), DEADLINE);
  t.is(v.outcome, 'failed');
  t.is(v.reason, 'a: no reason given; b: no reason given');
});

test('judgeTry: a crash (exit 134) is an error naming the agent', (t) => {
  const v = judgeTry(exit('a', okLine(5)), exit('b', '', { exitCode: 134, stderrTail: 'node: assertion failed\nAborted (core dumped)\n' }), DEADLINE);
  t.is(v.outcome, 'error');
  t.true(v.reason?.includes('agent b crashed: exit code 134'), v.reason ?? '');
  t.true(v.reason?.includes('Aborted (core dumped)'), v.reason ?? '');
  t.false(v.reason?.includes('agent a'), v.reason ?? '');
  t.is(v.timeToDirectMs, null);
  t.is(v.path, null);
});

test('judgeTry: a crash with a verdict reason reports the reason', (t) => {
  const v = judgeTry(exit('a', failLine('bad config: PEER_ID missing'), { exitCode: 2 }), exit('b', okLine(5)), DEADLINE);
  t.is(v.outcome, 'error');
  t.is(v.reason, 'agent a crashed: exit code 2: bad config: PEER_ID missing');
});

test('judgeTry: killed by SIGSEGV is an error naming the agent and the signal', (t) => {
  const v = judgeTry(exit('a', '', { exitCode: null, signal: 'SIGSEGV' }), exit('b', okLine(5)), DEADLINE);
  t.is(v.outcome, 'error');
  t.true(v.reason?.startsWith('agent a was killed by SIGSEGV'), v.reason ?? '');
});

test('judgeTry: a hang is an error mentioning the deadline, even if a verdict was printed', (t) => {
  const v = judgeTry(exit('a', okLine(5)), exit('b', okLine(5), { exitCode: null, signal: 'SIGTERM', timedOut: true }), DEADLINE);
  t.is(v.outcome, 'error');
  t.true(v.reason?.includes('agent b hung'), v.reason ?? '');
  t.true(v.reason?.includes(`${DEADLINE} ms deadline`), v.reason ?? '');
  t.false(v.reason?.includes('SIGTERM'), 'a hang is reported as a hang, not as the kill that ended it');
});

test('judgeTry: garbage stdout with exit 0 is an error, not a result', (t) => {
  const v = judgeTry(exit('a', 'connected!\n'), exit('b', okLine(5)), DEADLINE);
  t.is(v.outcome, 'error');
  t.true(v.reason?.startsWith('agent a exited 0 but last stdout line is not JSON'), v.reason ?? '');
});

test('judgeTry: no stdout with exit 1 is an error, not failed', (t) => {
  const v = judgeTry(exit('a', failLine('x'), { exitCode: 1 }), exit('b', '', { exitCode: 1 }), DEADLINE);
  t.is(v.outcome, 'error');
  t.is(v.reason, 'agent b exited 1 but printed no verdict line on stdout');
});

test('judgeTry: exit 0 with ok:false contradicts', (t) => {
  const v = judgeTry(exit('a', failLine('nope'), { exitCode: 0 }), exit('b', okLine(5)), DEADLINE);
  t.is(v.outcome, 'error');
  t.true(v.reason?.includes('agent a contradicts itself'), v.reason ?? '');
  t.true(v.reason?.includes('exit code 0'), v.reason ?? '');
});

test('judgeTry: exit 1 with ok:true contradicts', (t) => {
  const v = judgeTry(exit('a', failLine('nope'), { exitCode: 1 }), exit('b', okLine(5), { exitCode: 1 }), DEADLINE);
  t.is(v.outcome, 'error');
  t.true(v.reason?.includes('agent b contradicts itself: exit code 1 with "ok": true'), v.reason ?? '');
});

test('judgeTry: one connected, the other failed → error, "disagree"', (t) => {
  const v = judgeTry(exit('a', okLine(5)), exit('b', failLine('timed out waiting'), { exitCode: 1 }), DEADLINE);
  t.is(v.outcome, 'error');
  t.is(v.reason, 'agents disagree: a connected, b did not (timed out waiting)');
  const w = judgeTry(exit('a', failLine('lost'), { exitCode: 1 }), exit('b', okLine(5)), DEADLINE);
  t.is(w.reason, 'agents disagree: b connected, a did not (lost)');
});

test('judgeTry: both agents broken → both reasons', (t) => {
  const v = judgeTry(exit('a', '', { exitCode: 139 }), exit('b', '', { exitCode: null, signal: 'SIGKILL', timedOut: true }), DEADLINE);
  t.is(v.outcome, 'error');
  const parts = v.reason?.split('; ') ?? [];
  t.is(parts.length, 2);
  t.true(parts[0]!.startsWith('agent a crashed: exit code 139'));
  t.true(parts[1]!.startsWith('agent b hung'));
});

// ---------------------------------------------------------------------------------------------
// median

test('median', (t) => {
  t.is(median([]), null);
  t.is(median([5]), 5);
  t.is(median([3, 1, 2]), 2);
  t.is(median([10, 1, 4, 3]), 3.5);
  const xs = [3, 1, 2];
  median(xs);
  t.deepEqual(xs, [3, 1, 2], 'input not sorted in place');
});

// ---------------------------------------------------------------------------------------------
// judgeCell

let tryNo = 0;
function attempt(outcome: Outcome, timeToDirectMs: number | null = null, reason: string | null = null): Attempt {
  const ok = exit('a', okLine(1));
  return {
    agent: 'udp-punch',
    cell: 0,
    a: 'full-cone',
    b: 'symmetric',
    try: ++tryNo,
    lane: 0,
    outcome,
    reason: reason ?? (outcome === 'direct' ? null : `reason for ${outcome}`),
    notes: [],
    path: outcome === 'direct' ? 'direct-udp' : null,
    timeToDirectMs,
    agents: { a: ok, b: { ...ok, role: 'b' } },
    evidence: `cells/full-cone__symmetric/try-${tryNo}`,
  };
}

test('judgeCell: all direct → direct, matches an expected direct', (t) => {
  const c = judgeCell('full-cone', 'symmetric', 'direct', [attempt('direct', 10), attempt('direct', 30), attempt('direct', 20)], 'cells/fc__sym');
  t.is(c.outcome, 'direct');
  t.true(c.match);
  t.false(c.flaky);
  t.is(c.tries, 3);
  t.is(c.successes, 3);
  t.is(c.failures, 0);
  t.is(c.errors, 0);
  t.deepEqual(c.timeToDirectMs, { median: 20, max: 30, samples: [10, 30, 20] });
  t.deepEqual(c.reasons, []);
  t.is(c.a, 'full-cone');
  t.is(c.b, 'symmetric');
  t.is(c.expected, 'direct');
  t.is(c.evidence, 'cells/fc__sym');
});

test('judgeCell: all direct does not match an expected failed', (t) => {
  const c = judgeCell('x', 'y', 'failed', [attempt('direct', 10)], 'e');
  t.is(c.outcome, 'direct');
  t.false(c.match);
});

test('judgeCell: all failed → failed, matches expected failed, no times', (t) => {
  const c = judgeCell('x', 'y', 'failed', [attempt('failed'), attempt('failed')], 'e');
  t.is(c.outcome, 'failed');
  t.true(c.match);
  t.false(c.flaky);
  t.is(c.failures, 2);
  t.deepEqual(c.timeToDirectMs, { median: null, max: null, samples: [] });
  t.deepEqual(c.reasons, ['reason for failed'], 'reasons de-duplicated');
  t.false(judgeCell('x', 'y', 'direct', [attempt('failed')], 'e').match);
});

test('judgeCell: mixed direct/failed is flaky, never a match, outcome by majority', (t) => {
  const mostlyDirect = judgeCell('x', 'y', 'direct', [attempt('direct', 10), attempt('failed', null, 'lost'), attempt('direct', 14)], 'e');
  t.true(mostlyDirect.flaky);
  t.is(mostlyDirect.outcome, 'direct');
  t.false(mostlyDirect.match);
  t.is(mostlyDirect.successes, 2);
  t.is(mostlyDirect.failures, 1);
  t.deepEqual(mostlyDirect.reasons, ['lost']);

  const mostlyFailed = judgeCell('x', 'y', 'failed', [attempt('failed'), attempt('direct', 5), attempt('failed')], 'e');
  t.true(mostlyFailed.flaky);
  t.is(mostlyFailed.outcome, 'failed');
  t.false(mostlyFailed.match);
});

test('judgeCell: any error → outcome error, even against a direct majority', (t) => {
  const c = judgeCell('x', 'y', 'direct', [attempt('direct', 10), attempt('direct', 11), attempt('error', null, 'agent b hung')], 'e');
  t.is(c.outcome, 'error');
  t.is(c.errors, 1);
  t.true(c.flaky);
  t.false(c.match);
  t.deepEqual(c.reasons, ['agent b hung']);
  const allErr = judgeCell('x', 'y', 'failed', [attempt('error', null, 'boom'), attempt('error', null, 'boom')], 'e');
  t.is(allErr.outcome, 'error');
  t.false(allErr.flaky);
  t.false(allErr.match);
  t.deepEqual(allErr.reasons, ['boom']);
});

test('judgeCell: times are over direct tries only, in try order, rounded to 0.1 ms', (t) => {
  const c = judgeCell(
    'x', 'y', 'direct',
    [attempt('direct', 12.34), attempt('failed', 999), attempt('direct', 7.26), attempt('error', 500), attempt('direct', null), attempt('direct', 100.06)],
    'e',
  );
  t.deepEqual(c.timeToDirectMs.samples, [12.34, 7.26, 100.06]);
  t.is(c.timeToDirectMs.median, 12.3);
  t.is(c.timeToDirectMs.max, 100.1);
});

test('judgeCell: even number of direct times → mean of the middle two', (t) => {
  const c = judgeCell('x', 'y', 'direct', [attempt('direct', 10), attempt('direct', 25), attempt('direct', 40), attempt('direct', 1)], 'e');
  t.is(c.timeToDirectMs.median, 17.5);
  t.is(c.timeToDirectMs.max, 40);
});

test('judgeCell: reasons are distinct, the errors\' first, each kind in first-seen order', (t) => {
  const c = judgeCell('x', 'y', 'failed', [attempt('failed', null, 'r1'), attempt('failed', null, 'r2'), attempt('failed', null, 'r1'), attempt('error', null, 'r3'), attempt('error', null, 'r2')], 'e');
  t.deepEqual(c.reasons, ['r3', 'r2', 'r1']);
});

test('judgeCell: an error cell leads with an error reason, not an earlier try\'s clean failure', (t) => {
  const c = judgeCell('x', 'y', 'failed', [attempt('failed', null, 'a: no pong within 600 ms'), attempt('error', null, 'agent b crashed: exit code 7')], 'e');
  t.is(c.outcome, 'error');
  t.is(c.reasons[0], 'agent b crashed: exit code 7');
});

test('wilson: 95 % score interval, inside [0, 1] at the extremes', (t) => {
  t.deepEqual(wilson(0, 3), { rate: 0, low: 0, high: 0.562 });
  t.deepEqual(wilson(3, 3), { rate: 1, low: 0.438, high: 1 });
  // textbook value: 8/10 → (0.490, 0.943)
  t.deepEqual(wilson(8, 10), { rate: 0.8, low: 0.49, high: 0.943 });
  t.deepEqual(wilson(0, 0), { rate: 0, low: 0, high: 1 });
});

// ---------------------------------------------------------------------------------------------
// paths

test('judgeTry: a relayed verdict is outcome relayed; two ends naming different paths are an error', (t) => {
  const relayed = (role: 'a' | 'b') => exit(role, okLine(40, { path: 'relayed' }));
  const v = judgeTry(relayed('a'), relayed('b'), DEADLINE);
  t.is(v.outcome, 'relayed');
  t.is(v.path, 'relayed');
  const mixed = judgeTry(relayed('a'), exit('b', okLine(12)), DEADLINE);
  t.is(mixed.outcome, 'error');
  t.regex(mixed.reason ?? '', /disagree on the path: a says relayed, b says direct-udp/);
  const tcp = judgeTry(exit('a', okLine(9, { path: 'direct-tcp' })), exit('b', okLine(9, { path: 'direct-tcp' })), DEADLINE);
  t.deepEqual([tcp.outcome, tcp.path], ['direct', 'direct-tcp']);
});

test('judgeCell: the path decides a path expectation, and differing paths make the cell flaky', (t) => {
  const via = (path: string) => ({ ...attempt(path === 'relayed' ? 'relayed' : 'direct', 20), path });
  const tcp = judgeCell('x', 'y', 'direct-tcp', [via('direct-tcp'), via('direct-tcp')], 'e');
  t.deepEqual([tcp.outcome, tcp.path, tcp.match, tcp.flaky, tcp.successes], ['direct', 'direct-tcp', true, false, 2]);
  t.false(judgeCell('x', 'y', 'direct-tcp', [via('direct-udp')], 'e').match, 'another direct path is not the expected one');
  const mixed = judgeCell('x', 'y', 'direct', [via('direct-udp'), via('direct-tcp'), via('direct-tcp')], 'e');
  t.true(mixed.flaky);
  t.false(mixed.match);
  t.is(mixed.path, 'direct-tcp', 'the most frequent path');
  t.deepEqual(mixed.paths, { 'direct-udp': 1, 'direct-tcp': 2 });
  const relay = judgeCell('x', 'y', 'relayed', [via('relayed'), via('relayed')], 'e');
  t.deepEqual([relay.outcome, relay.match, relay.successRate.rate], ['relayed', true, 1]);
  t.false(judgeCell('x', 'y', 'direct', [via('relayed')], 'e').match, 'relayed is not direct');
});

// ---------------------------------------------------------------------------------------------
// honest verdicts: who did the agent connect to?

const view = (partner: 'a' | 'b', addresses: string[]) => ({ partner, addresses, services: ['203.0.113.10', '203.0.113.11'] });
const VIEWS = { a: view('b', ['203.0.113.21']), b: view('a', ['203.0.113.20']) };
const claims = (role: 'a' | 'b', peer: string | null, path = 'direct-udp') => exit(role, JSON.stringify({ ok: true, path, peer, timeToDirectMs: 5 }));

test('judgeTry: a connected try whose agents name their partners stands', (t) => {
  const v = judgeTry(claims('a', '203.0.113.21:40000'), claims('b', '203.0.113.20:31337'), DEADLINE, VIEWS);
  t.deepEqual([v.outcome, v.reason], ['direct', null]);
});

test('judgeTry: an agent claiming a peer its partner cannot be is an error that names it', (t) => {
  const v = judgeTry(claims('a', '198.51.100.99:1'), claims('b', '203.0.113.20:40000'), DEADLINE, VIEWS);
  t.is(v.outcome, 'error');
  t.is(v.path, null);
  t.is(v.reason, 'agent a says it connected to 198.51.100.99:1, which is not its partner: b is seen as 203.0.113.21');
  // another lane's router: the cross-lane pairing of a third-party rendezvous
  const other = judgeTry(claims('a', '203.0.113.23:40000'), claims('b', '203.0.113.22:40000'), DEADLINE, VIEWS);
  t.is(other.outcome, 'error');
  t.regex(other.reason ?? '', /agent a says it connected to 203.0.113.23:40000, which is not its partner.*; agent b says it connected to 203.0.113.22:40000/);
});

test('judgeTry: a connected verdict without a peer, or with one that is no ip:port, is an error', (t) => {
  t.regex(judgeTry(claims('a', null), claims('b', '203.0.113.20:1'), DEADLINE, VIEWS).reason ?? '', /agent a says it connected but names no peer/);
  t.regex(judgeTry(claims('a', 'somewhere'), claims('b', '203.0.113.20:1'), DEADLINE, VIEWS).reason ?? '', /agent a names peer "somewhere", which is not an ip:port/);
  t.regex(judgeTry(claims('a', '203.0.113.21:70000'), claims('b', '203.0.113.20:1'), DEADLINE, VIEWS).reason ?? '', /not an ip:port/);
});

test('judgeTry: a service address is a peer only on a relayed path', (t) => {
  const relayed = judgeTry(claims('a', '203.0.113.10:12101', 'relayed'), claims('b', '203.0.113.20:5', 'relayed'), DEADLINE, VIEWS);
  t.deepEqual([relayed.outcome, relayed.reason], ['relayed', null]);
  const direct = judgeTry(claims('a', '203.0.113.10:12101'), claims('b', '203.0.113.20:5'), DEADLINE, VIEWS);
  t.is(direct.outcome, 'error');
  t.regex(direct.reason ?? '', /a service of the run: a path through it is "relayed", not direct-udp/);
});

test('judgeTry: without views (peer checks off) a peer is not checked; a side whose view is null is not either', (t) => {
  t.is(judgeTry(claims('a', '198.51.100.99:1'), claims('b', null), DEADLINE).outcome, 'direct');
  t.is(judgeTry(claims('a', '203.0.113.21:1'), claims('b', null), DEADLINE, { a: VIEWS.a, b: null }).outcome, 'direct');
});

test('judgeTry: a failed or errored try is judged as before, whatever its peers', (t) => {
  const v = judgeTry(exit('a', failLine('x'), { exitCode: 1 }), exit('b', failLine('y'), { exitCode: 1 }), DEADLINE, VIEWS);
  t.is(v.outcome, 'failed');
  const half = judgeTry(claims('a', '198.51.100.99:1'), exit('b', failLine('gave up'), { exitCode: 1 }), DEADLINE, VIEWS);
  t.regex(half.reason ?? '', /agents disagree/);
});

test('peerAddress: IPv4 and bracketed IPv6 endpoints', (t) => {
  t.is(peerAddress('203.0.113.21:40000'), '203.0.113.21');
  t.is(peerAddress('[2001:db8::1]:443'), '2001:db8::1');
  t.is(peerAddress('203.0.113.21'), null);
  t.is(peerAddress('host:80'), null);
});

// ---------------------------------------------------------------------------------------------
// who decides: verdict rules a, b, either

const stoppedExit = (role: 'a' | 'b') => exit(role, '', { exitCode: null, signal: 'SIGTERM', stopped: true });

test('rule a: only a\'s verdict counts, a server ended by the harness is no fault, its peer is not checked', (t) => {
  const v = judgeTry(claims('a', '203.0.113.21:40000'), stoppedExit('b'), DEADLINE, VIEWS, { rule: 'a' });
  t.deepEqual([v.outcome, v.path, v.timeToDirectMs, v.reason], ['direct', 'direct-udp', 5, null]);
  const failed = judgeTry(exit('a', failLine('refused'), { exitCode: 1 }), stoppedExit('b'), DEADLINE, VIEWS, { rule: 'a' });
  t.deepEqual([failed.outcome, failed.reason], ['failed', 'a: refused']);
  // a server that never printed a verdict and ended by itself cleanly is fine too
  t.is(judgeTry(claims('a', '203.0.113.21:1'), exit('b', '', { exitCode: 0 }), DEADLINE, VIEWS, { rule: 'a' }).outcome, 'direct');
});

test('rule a: the side that does not decide is still a fault when it crashes, is killed by something else, or hangs', (t) => {
  const crashed = judgeTry(claims('a', '203.0.113.21:1'), exit('b', '', { exitCode: 139 }), DEADLINE, VIEWS, { rule: 'a' });
  t.is(crashed.outcome, 'error');
  t.regex(crashed.reason ?? '', /agent b crashed: exit code 139/);
  t.is(judgeTry(claims('a', '203.0.113.21:1'), exit('b', '', { exitCode: null, signal: 'SIGKILL' }), DEADLINE, VIEWS, { rule: 'a' }).outcome, 'error');
  t.regex(judgeTry(exit('a', '', { timedOut: true, exitCode: null, signal: 'SIGKILL' }), stoppedExit('b'), DEADLINE, VIEWS, { rule: 'a' }).reason ?? '', /agent a hung/);
  // a's lie is caught even though b is not asked
  t.regex(judgeTry(claims('a', '198.51.100.9:1'), stoppedExit('b'), DEADLINE, VIEWS, { rule: 'a' }).reason ?? '', /agent a says it connected to 198\.51\.100\.9:1, which is not its partner/);
});

test('rule b mirrors rule a', (t) => {
  t.is(judgeTry(stoppedExit('a'), claims('b', '203.0.113.20:1'), DEADLINE, VIEWS, { rule: 'b' }).outcome, 'direct');
  t.is(judgeTry(claims('a', '203.0.113.21:1'), exit('b', failLine('no'), { exitCode: 1 }), DEADLINE, VIEWS, { rule: 'b' }).outcome, 'failed');
});

test('rule either: one connected side is enough, the other (ended by the harness) does not count; both failing is failed', (t) => {
  const v = judgeTry(stoppedExit('a'), claims('b', '203.0.113.20:1'), DEADLINE, VIEWS, { rule: 'either' });
  t.deepEqual([v.outcome, v.reason], ['direct', null]);
  const both = judgeTry(exit('a', failLine('x'), { exitCode: 1 }), exit('b', failLine('y'), { exitCode: 1 }), DEADLINE, VIEWS, { rule: 'either' });
  t.deepEqual([both.outcome, both.reason], ['failed', 'a: x; b: y']);
  t.is(judgeTry(exit('a', '', { exitCode: 5 }), claims('b', '203.0.113.20:1'), DEADLINE, VIEWS, { rule: 'either' }).outcome, 'error', 'a fault is never hidden');
  const paths = judgeTry(claims('a', '203.0.113.21:1', 'relayed'), claims('b', '203.0.113.20:1'), DEADLINE, VIEWS, { rule: 'either' });
  t.regex(paths.reason ?? '', /disagree on the path/);
});

test('budget timing: without a reported time, a connected try takes the deciding side\'s time from its start', (t) => {
  const quiet = (role: 'a' | 'b', ms: number) => exit(role, JSON.stringify({ ok: true, path: 'direct-udp', peer: role === 'a' ? '203.0.113.21:1' : '203.0.113.20:1' }), { durationMs: ms });
  t.is(judgeTry(quiet('a', 800), quiet('b', 650), DEADLINE, VIEWS, { measuredTime: true }).timeToDirectMs, 650);
  t.is(judgeTry(quiet('a', 800), quiet('b', 650), DEADLINE, VIEWS).timeToDirectMs, null, 'window timing never guesses');
  t.is(judgeTry(claims('a', '203.0.113.21:1'), quiet('b', 650), DEADLINE, VIEWS, { measuredTime: true }).timeToDirectMs, 5, 'a reported time wins');
});

// ---------------------------------------------------------------------------------------------
// success rates and observe-only cells

test('judgeCell: a rate expectation holds unless its interval lies below; flaky tries are what it expects', (t) => {
  const tries = [attempt('direct', 5), attempt('failed'), attempt('direct', 6), attempt('failed')];
  const c = judgeCell('x', 'y', { atLeast: 0.5 }, tries, 'e');
  t.true(c.flaky);
  t.true(c.match);
  t.like(c.rate, { successes: 2, holds: true, confirmed: false });
  const byPath = judgeCell('x', 'y', { atLeast: 0.5, path: 'direct-tcp' }, tries, 'e');
  t.like(byPath.rate, { successes: 0, path: 'direct-tcp' });
  t.false(byPath.match, '0 of 4 refutes 50 %: the interval ends at 0.49');
  const refuted = judgeCell('x', 'y', { atLeast: 0.9 }, [attempt('failed'), attempt('failed'), attempt('failed'), attempt('failed'), attempt('failed')], 'e');
  t.false(refuted.match);
  t.false(judgeCell('x', 'y', { atLeast: 0.1 }, [attempt('direct', 1), attempt('error')], 'e').match, 'an error is a fault, never a rate');
});

test('judgeCell: observe-only cells match whatever happened, except a fault', (t) => {
  t.true(judgeCell('x', 'y', null, [attempt('failed')], 'e').match);
  t.true(judgeCell('x', 'y', null, [attempt('direct', 3), attempt('failed')], 'e').match);
  t.false(judgeCell('x', 'y', null, [attempt('error')], 'e').match);
});
