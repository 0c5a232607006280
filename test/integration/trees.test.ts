// Agents are process trees: a wrapper's children, a double-forked daemon, a child that ignores SIGTERM
// and holds the output pipes. The deadline bounds every try, nothing of a tree outlives its try or the
// run, and a try whose agent left processes behind says so.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Attempt } from '../../harness/types.ts';
import { cell, cli, explain, namespaces, needsRoot, processesOfRun, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

const TIMEOUT_MS = 300;
/** the harness's hard deadline for these scenarios: pairing wait 5000 + one punch window + 1500 grace */
const HARD_MS = 5000 + TIMEOUT_MS + 1500;

/** full cone × full cone, one try, with the given peer (and rendezvous) agents */
function scenario(label: string, peer: string, rendezvous = join(ROOT, 'agents/udp-punch/rendezvous.ts'), expect = 'direct'): string {
  const file = join(tempDir(`scenario-${label}`), `${label}.json`);
  const s = {
    name: label,
    description: `process trees: ${label}`,
    a: ['full-cone'],
    b: ['full-cone'],
    tries: 1,
    timeoutMs: TIMEOUT_MS,
    agent: { peer, rendezvous },
    expect: { 'full-cone': { 'full-cone': expect } },
  };
  writeFileSync(file, JSON.stringify(s));
  return file;
}

const fixture = (name: string) => join(ROOT, 'test/fixtures/agents', name);
const attemptsOf = (out: string) => JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Attempt[];

if (needsRoot(test)) {
  for (const [agent, what] of [
    ['wrapper-child.sh', 'a wrapper whose child holds the pipes'],
    ['wrapper-ignore.sh', 'a wrapper whose child ignores SIGTERM and holds the pipes'],
  ] as const) {
    test(`the hard deadline bounds a try of ${what}, and nothing of it survives`, async (t) => {
      const out = tempDir(agent);
      const r = await cli([scenario(agent.replace('.sh', ''), fixture(agent)), '--out', out]);
      t.is(r.exitCode, 3, r.all);
      const c = cell(readReport(out), 'full-cone', 'full-cone');
      t.is(c.outcome, 'error');
      t.regex(c.reasons[0] ?? '', new RegExp(`agent a hung: still running at the ${HARD_MS} ms deadline, killed`));
      for (const role of ['a', 'b'] as const) {
        const x = attemptsOf(out)[0]!.agents[role];
        t.true(x.timedOut, role);
        // SIGTERM at the deadline, SIGKILL 300 ms later, the pipes let go of at once: not the child's 15 s
        t.true(x.durationMs < HARD_MS + 1500, `agent ${role} ended ${x.durationMs} ms after its start, deadline ${HARD_MS} ms`);
      }
      const runId = runIdOf(out);
      t.deepEqual(processesOfRun(runId), []);
      t.deepEqual(await namespaces(`nmx-${runId}-`), []);
    });
  }

  test('a double-forked daemon that keeps the pipes neither holds up the try nor survives it, and the try says so', async (t) => {
    const out = tempDir('daemon');
    const r = await cli([scenario('daemon', fixture('daemon.sh'), undefined, 'failed'), '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const c = cell(readReport(out), 'full-cone', 'full-cone');
    t.is(c.outcome, 'failed');
    t.deepEqual(c.notes, [
      'agent a left 1 process running when it ended (sleep); the harness ended it',
      'agent b left 1 process running when it ended (sleep); the harness ended it',
    ]);
    t.regex(c.reasons[0] ?? '', /agent a left 1 process running when it ended \(sleep\)/);
    for (const role of ['a', 'b'] as const) t.true(attemptsOf(out)[0]!.agents[role].durationMs < 3000);
    t.deepEqual(processesOfRun(runIdOf(out)), []);
  });

  test('a rendezvous wrapper\'s child and daemon do not outlive the run', async (t) => {
    const out = tempDir('rdv-wrapper');
    const r = await cli([scenario('rdv-wrapper', join(ROOT, 'agents/udp-punch/peer.ts'), fixture('rendezvous-wrapper.sh')), '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    t.is(cell(readReport(out), 'full-cone', 'full-cone').outcome, 'direct');
    const runId = runIdOf(out);
    t.deepEqual(processesOfRun(runId), [], 'the sleep the wrapper started and its daemon are gone');
    t.deepEqual(await namespaces(`nmx-${runId}-`), []);
  });
}
