// Agents that stay up (manifest "serve": true, harness/serve.ts): one process per host serves every try
// of its lane. A try must behave as in a fresh process whatever the try before it did, and a server that
// breaks the protocol must cost exactly its try (an error with the reason), never the next one.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Attempt } from '../../harness/types.ts';
import { cell, cli, explain, namespaces, needsRoot, processesOfRun, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

/** A scenario file in a temporary folder. */
function scenarioFile(label: string, fields: object): string {
  const file = join(tempDir(`serve-${label}`), `${label}.json`);
  writeFileSync(file, JSON.stringify({ name: label, description: `serve: ${label}`, ...fields }, null, 2));
  return file;
}

const attemptsOf = (out: string) => JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Attempt[];

/** Outcome of every try, by cell, in try order. */
function outcomes(out: string): Record<string, string[]> {
  const by: Record<string, string[]> = {};
  for (const x of attemptsOf(out).sort((p, q) => p.try - q.try)) (by[`${x.a} × ${x.b}`] ??= []).push(x.outcome);
  return by;
}

/** The serving processes' logs: one per process started (serve/<agent>-<node>[.N].stderr). */
const serverLogs = (out: string) => readdirSync(join(out, 'serve')).sort();

async function nothingLeft(t: import('ava').ExecutionContext, out: string): Promise<void> {
  const runId = runIdOf(out);
  t.deepEqual(await namespaces(`nmx-${runId}-`), []);
  t.deepEqual(processesOfRun(runId), [], 'no serving agent outlives the run');
}

if (needsRoot(test)) {
  test('one udp-punch process per host serves a failed try and then direct ones, each as a fresh process would (the same cells as one process per try)', async (t) => {
    // one lane: the tries expected to fail run first, the direct ones after them, on the same processes
    const file = scenarioFile('independent', {
      a: ['symmetric'],
      b: ['port-restricted', 'full-cone'],
      tries: 2,
      timeoutMs: 400,
      expect: { symmetric: { 'port-restricted': 'failed', 'full-cone': 'direct' } },
    });
    const served = tempDir('serve-independent-out');
    const r = await cli([file, '--jobs', '1', '--out', served]);
    t.is(r.exitCode, 0, r.all);
    // one process per host served all four tries: none left a socket or timer behind (the SDK would
    // have ended it and the harness started a second), and each try got its own verdict, kept as a
    // one-shot peer's would be (its stdout: the verdict line)
    t.deepEqual(serverLogs(served), ['udp-punch-0ha.stderr', 'udp-punch-0hb.stderr']);
    t.deepEqual(outcomes(served), { 'symmetric × port-restricted': ['failed', 'failed'], 'symmetric × full-cone': ['direct', 'direct'] });
    const attempts = attemptsOf(served);
    for (const x of attempts) {
      for (const role of ['a', 'b'] as const) {
        const verdict = JSON.parse(readFileSync(join(served, x.agents[role].stdout), 'utf8')) as { ok: boolean };
        t.is(verdict.ok, x.outcome === 'direct');
        t.is(x.agents[role].exitCode, x.outcome === 'direct' ? 0 : 1);
      }
    }
    // the failed tries' evidence is theirs alone: the direct tries' logs do not carry their lines
    const direct = attempts.find((x) => x.b === 'full-cone' && x.try === 1)!;
    const directLog = readFileSync(join(served, direct.agents.a.stderr), 'utf8');
    t.regex(directLog, /direct path confirmed/);
    t.notRegex(directLog, /no pong within/);
    // the same pairings with one process per try: the same outcomes
    const fresh = tempDir('serve-independent-fresh');
    const r2 = await cli([file, '--jobs', '1', '--agent', join(ROOT, 'agents/udp-punch/peer.ts'), '--out', fresh]);
    t.is(r2.exitCode, 0, r2.all);
    t.deepEqual(outcomes(fresh), outcomes(served));
    await nothingLeft(t, served);
  });

  test('a serving agent beside one started per try on the same lanes: the per-try agent\'s namespace sweep spares the idle serving processes', async (t) => {
    const out = tempDir('serve-mixed-out');
    const r = await cli(['symmetric-vs-cone', '--jobs', '1', '--agent', `served=${join(ROOT, 'agents/udp-punch/natmatrix-agent.json')}`, '--agent', `py=${join(ROOT, 'agents/examples/python-udp-punch.json')}`, '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    // one serving process per host for the whole run: none was swept away between its tries
    t.deepEqual(serverLogs(out), ['served-0ha.stderr', 'served-0hb.stderr']);
    await nothingLeft(t, out);
  });

  const FAULTS: Array<[string, RegExp]> = [
    ['hang', /agent [ab] hung: still running at the \d+ ms deadline, killed/],
    ['crash', /agent [ab] ended during the try: it exited with code 7/],
    ['garbage', /agent [ab] printed "hello, I am not a reply" instead of the reply to try/],
    ['wrong-id', /agent [ab] printed .*someone-else.* instead of the reply to try/],
  ];
  for (const [fault, reason] of FAULTS) {
    test(`a serving agent that breaks the protocol (${fault}) makes its try an error, and the next try on the host gets a new process that connects`, async (t) => {
      const file = scenarioFile(`fault-${fault}`, {
        a: ['full-cone'],
        b: ['full-cone'],
        tries: 2,
        agent: join(ROOT, 'test/fixtures/agents/serve-broken/natmatrix-agent.json'),
        expect: { 'full-cone': { 'full-cone': 'direct' } },
      });
      const out = tempDir(`serve-fault-${fault}-out`);
      const r = await cli([file, '--jobs', '1', '--out', out], { FIXTURE_FAULT: fault });
      t.is(r.exitCode, 3, r.all);
      t.deepEqual(outcomes(out), { 'full-cone × full-cone': ['error', 'direct'] });
      const c = cell(readReport(out), 'full-cone', 'full-cone');
      t.regex(c.reasons.join('\n'), reason);
      // the broken process was ended, a second one served try 2 (on at least the side that broke)
      t.true(serverLogs(out).some((f) => /\.2\.stderr$/.test(f)), serverLogs(out).join(' '));
      await nothingLeft(t, out);
    });
  }

  test('a serving agent that never says ready: every try is an error naming what it printed, and nothing is left', async (t) => {
    const file = scenarioFile('no-ready', {
      a: ['full-cone'],
      b: ['full-cone'],
      tries: 2,
      agent: join(ROOT, 'test/fixtures/agents/serve-broken/natmatrix-agent.json'),
      expect: { 'full-cone': { 'full-cone': 'direct' } },
    });
    const out = tempDir('serve-no-ready-out');
    const r = await cli([file, '--jobs', '1', '--out', out], { FIXTURE_FAULT: 'no-ready' });
    t.is(r.exitCode, 3, r.all);
    t.deepEqual(outcomes(out), { 'full-cone × full-cone': ['error', 'error'] });
    t.regex(cell(readReport(out), 'full-cone', 'full-cone').reasons.join('\n'), /could not start serving: the agent printed "starting up\.\.\." before its ready line/);
    await nothingLeft(t, out);
  });
}
