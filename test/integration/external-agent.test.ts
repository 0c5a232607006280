// Any executable obeying the contract can be judged: a peer agent written in Python, swapped in with
// --agent, lands in the matrix with its successes and its failures told apart.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { cell, cli, explain, namespaces, needsRoot, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('a Python peer agent through symmetric-vs-cone: direct where it should be, failed where it should be', async (t) => {
    const out = tempDir('python');
    const agent = join(ROOT, 'agents/examples/udp_punch_peer.py');
    const r = await cli(['symmetric-vs-cone', '--agent', agent, '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    const fc = cell(report, 'symmetric', 'full-cone');
    const pr = cell(report, 'symmetric', 'port-restricted');
    t.deepEqual([fc.outcome, fc.successes, fc.tries], ['direct', 3, 3]);
    t.deepEqual([pr.outcome, pr.successes, pr.tries], ['failed', 0, 3]);
    t.true(fc.timeToDirectMs.median !== null);
    // the failure is the agent's own clean verdict, not a fault
    t.regex(pr.reasons.join('\n'), /a: no pong within 600 ms of learning peer .*\(sent \d+ pings\)/);
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
  });

  test('--agent with a file that is not there: exit 2, one line', async (t) => {
    const out = tempDir('noagent');
    const r = await cli(['symmetric-vs-cone', '--agent', '/nonexistent/agent.py', '--out', out]);
    t.is(r.exitCode, 2);
    t.regex(r.stderr, /^natmatrix: agent not found: \/nonexistent\/agent\.py \(a relative path is taken from the directory the command ran in, \/\S+; check the path, or run from your project's folder\)$/);
    t.is(r.stderr.split('\n').length, 1, 'one line');
    t.false(existsSync(join(out, 'topology.json')), 'checked before anything was built');
  });
}
