// The lane loop's cells: every try carries the identity of the cell it was planned for, and cells are
// judged from exactly their own tries, in plan order — two agents' matrices over the same NAT names
// never mix, whatever order the lanes finished in.
import test from 'ava';
import { judgeCells } from '../../harness/run.ts';
import type { PlannedAttempt } from '../../harness/plan.ts';
import type { AgentExit, Attempt, Outcome } from '../../harness/types.ts';

const exit = (role: 'a' | 'b'): AgentExit => ({ role, exitCode: 0, signal: null, timedOut: false, stopped: false, durationMs: 1, verdict: null, verdictProblem: null, leftover: [], stderrTail: '', stdout: '', stderr: '' });

function planned(agent: number, cell: number, a: string, b: string, tryNo: number): PlannedAttempt {
  return { agent, cell, a, b, try: tryNo, expected: 'direct', session: `r.${cell}.${tryNo}`, sameSite: false } as unknown as PlannedAttempt;
}

function tried(agent: string, cell: number, a: string, b: string, tryNo: number, outcome: Outcome): Attempt {
  return { agent, cell, a, b, try: tryNo, lane: 0, outcome, reason: outcome === 'direct' ? null : 'no pong', notes: [], path: outcome === 'direct' ? 'direct-udp' : null, timeToDirectMs: outcome === 'direct' ? 5 : null, agents: { a: exit('a'), b: exit('b') }, evidence: `cells/${agent}/x/try-${tryNo}` };
}

test('two agents over the same pairing: each cell holds only its own tries, in plan order', (t) => {
  const attempts = [planned(0, 0, 'full-cone', 'symmetric', 1), planned(0, 0, 'full-cone', 'symmetric', 2), planned(1, 1, 'full-cone', 'symmetric', 1), planned(1, 1, 'full-cone', 'symmetric', 2)];
  // finished out of order; agent "two" failed both tries, agent "one" connected both
  const done = [tried('two', 1, 'full-cone', 'symmetric', 2, 'failed'), tried('one', 0, 'full-cone', 'symmetric', 2, 'direct'), tried('two', 1, 'full-cone', 'symmetric', 1, 'failed'), tried('one', 0, 'full-cone', 'symmetric', 1, 'direct')];
  const cells = judgeCells({ agents: 2, attempts }, done, ['one', 'two']);
  t.deepEqual(cells.map((c) => [c.agent, c.outcome, c.successes, c.tries]), [['one', 'direct', 2, 2], ['two', 'failed', 0, 2]]);
  t.deepEqual(cells.map((c) => c.evidence), ['cells/one/full-cone-vs-symmetric', 'cells/two/full-cone-vs-symmetric']);
  t.deepEqual(cells[0]!.timeToDirectMs.samples, [5, 5]);
});

test('a planned cell none of whose tries ran is an error, not dropped', (t) => {
  const attempts = [planned(0, 0, 'dmz', 'dmz', 1), planned(0, 1, 'dmz', 'symmetric', 1)];
  const cells = judgeCells({ agents: 1, attempts }, [tried('one', 0, 'dmz', 'dmz', 1, 'direct')], ['one']);
  t.is(cells.length, 2);
  t.is(cells[1]!.outcome, 'error');
  t.deepEqual(cells[1]!.reasons, ['no try ran']);
});
