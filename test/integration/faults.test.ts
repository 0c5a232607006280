// Broken agents must come out as cell outcome "error" with a reason — never as a NAT result — and the
// run must go on with the other cells and still leave nothing behind.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { cell, cli, FIXTURES, isRoot, namespaces, needsRoot, processesOfRun, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

const CASES: Array<[string, RegExp]> = [
  ['crash', /agent a exited 1 but printed no verdict line/],
  ['killed', /agent a was killed by SIGKILL/],
  ['garbage', /last stdout line is not JSON: "hello, I am not JSON"/],
  ['silent', /agent a exited 0 but printed no verdict line/],
  ['half', /agents disagree: a connected, b did not \(gave up\)/],
  ['hang', /agent a hung: still running at the \d+ ms deadline, killed/],
];

/** Full cone against full cone and port-restricted, with the deliberately broken peer agent `fault`. */
function faultScenario(fault: string): string {
  const file = join(tempDir(`scenario-${fault}`), `fault-${fault}.json`);
  const scenario = {
    name: `fault-${fault}`,
    description: `broken agent: ${fault}`,
    a: ['full-cone'],
    b: ['full-cone', 'port-restricted'],
    tries: 1,
    timeoutMs: 300,
    agent: { peer: join(ROOT, `test/fixtures/agents/${fault}.mjs`), rendezvous: join(ROOT, 'agents/udp-punch/rendezvous.ts') },
    expect: { 'full-cone': { 'full-cone': 'direct', 'port-restricted': 'direct' } },
  };
  writeFileSync(file, JSON.stringify(scenario, null, 2));
  return file;
}

if (needsRoot(test)) {
  for (const [fault, reason] of CASES) {
    test(`a peer agent that is "${fault}" gives outcome error with its reason, exit 3`, async (t) => {
      const out = tempDir(`fault-${fault}`);
      const r = await cli([faultScenario(fault), '--out', out]);
      t.is(r.exitCode, 3, r.all);
      const report = readReport(out);
      // every cell ran (the run went on after the first fault) and each is an error
      t.is(report.cells.length, 2);
      for (const b of ['full-cone', 'port-restricted']) {
        const c = cell(report, 'full-cone', b);
        t.is(c.outcome, 'error', `${b}: ${c.reasons.join(' / ')}`);
        t.false(c.match);
        t.is(c.errors, 1);
        t.regex(c.reasons.join('\n'), reason);
      }
      t.is(report.summary.errored, 2);
      t.regex(r.stdout, /ERR 0\/1 ✗/);
      const runId = runIdOf(out);
      t.deepEqual(await namespaces(`nmx-${runId}-`), []);
      t.deepEqual(processesOfRun(runId), [], 'no agent survives, not even one that ignores SIGTERM');
    });
  }
}

if (isRoot) {
  for (const scope of ['run', 'lane', 'try'] as const) {
    test(`a rendezvous that dies (scope ${scope}) makes every pairing an error naming it, exit 3`, async (t) => {
      const out = tempDir(`rdv-dies-${scope}`);
      const r = await cli([join(FIXTURES, 'rendezvous-dies.ts'), '--out', out, '--jobs', '2', '--rendezvous-scope', scope]);
      t.is(r.exitCode, 3, r.all);
      const report = readReport(out);
      for (const c of report.cells) {
        t.is(c.outcome, 'error');
        t.regex(c.reasons.join('\n'), /the rendezvous agent exited with code 1/);
      }
      t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
    });
  }
}
