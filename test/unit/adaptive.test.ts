// Adaptive tries (adaptive.ts) and the work queue that runs their rounds (run.ts WorkQueue): cells get
// more tries only while their interval is wide and nothing has settled them; lanes wait for the next
// round instead of closing, and every try is run once.
import test from 'ava';
import { adaptiveRounds, decision } from '../../harness/adaptive.ts';
import { judgeCell } from '../../harness/judge.ts';
import type { PlannedAttempt } from '../../harness/plan.ts';
import { WorkQueue } from '../../harness/run.ts';
import type { Attempt, Expectation, Outcome } from '../../harness/types.ts';

const O = { ciWidth: 0.3, maxTries: 20 };

function tries(outcomes: Outcome[], cell = 0): Attempt[] {
  return outcomes.map((outcome, k) => ({
    agent: 'udp', cell, a: 'x', b: 'y', try: k + 1, lane: 0, outcome, reason: null, notes: [],
    path: outcome === 'direct' ? 'direct-udp' : outcome === 'relayed' ? 'relayed' : null, timeToDirectMs: outcome === 'direct' ? 5 : null,
    agents: {} as Attempt['agents'], evidence: '',
  }) as Attempt);
}
const judged = (expected: Expectation, outcomes: Outcome[]) => judgeCell('x', 'y', expected, tries(outcomes), '', 'udp');
const n = (k: number, o: Outcome): Outcome[] => Array.from({ length: k }, () => o);

test('a cell stops when its interval is narrow enough, its expectation settled, an error, or the cap', (t) => {
  t.is(decision(judged('direct', n(8, 'direct')), O), null, '8/8: 0.32 wide, more needed');
  t.is(decision(judged('direct', n(16, 'direct')), O), 'interval', '16/16: 0.19 wide');
  t.is(decision(judged('direct', [...n(3, 'direct'), 'failed']), O), 'settled', 'a "direct" cell that failed once stays a mismatch');
  t.is(decision(judged('failed', n(4, 'failed')), O), null, 'failing as expected: keep going');
  t.is(decision(judged('direct', ['direct', 'error']), O), 'error');
  t.is(decision(judged({ atLeast: 0.9 }, n(6, 'failed')), O), 'settled', '0/6 refutes ≥ 90 %');
  t.is(decision(judged({ atLeast: 0.5 }, n(8, 'direct')), O), 'settled', '8/8 confirms ≥ 50 % (low 0.68)');
  t.is(decision(judged({ atLeast: 0.9 }, [...n(9, 'direct'), 'failed']), O), null, '9/10 neither confirms nor refutes 90 %');
  t.is(decision(judged(null, [...n(10, 'direct'), ...n(10, 'failed')]), O), 'cap', 'observe only, 20 tries: the cap');
  t.is(decision(judged(null, [...n(5, 'direct'), ...n(5, 'failed')]), O), null);
});

function planned(cells: Array<{ cell: number; expected: Expectation }>, per: number): PlannedAttempt[] {
  return cells.flatMap(({ cell, expected }) => Array.from({ length: per }, (_, k) => ({ agent: 0, cell, a: `a${cell}`, b: 'y', try: k + 1, expected, session: `run.${cell}.${k + 1}`, sameSite: false }) as unknown as PlannedAttempt));
}

test('rounds double an undecided cell\'s tries up to the cap, numbering them on; decided cells get none', (t) => {
  const plan = planned([{ cell: 0, expected: 'direct' }, { cell: 1, expected: 'direct' }], 2);
  const r = adaptiveRounds(plan, { ciWidth: 0.3, maxTries: 12 }, ['udp']);
  const run = (p: PlannedAttempt[], outcome: (p: PlannedAttempt) => Outcome) => p.map((x) => tries([outcome(x)], x.cell).map((a) => ({ ...a, try: x.try, a: x.a }))[0]!);
  // cell 0 always connects; cell 1 fails once: settled as a mismatch after the first round
  const outcome = (x: PlannedAttempt): Outcome => (x.cell === 1 && x.try === 2 ? 'failed' : 'direct');
  const all = run(plan, outcome);
  const round2 = r.next(all);
  t.deepEqual(round2.map((x) => `${x.cell}.${x.try}`), ['0.3', '0.4']);
  t.is(round2[0]!.session, 'run.0.3');
  all.push(...run(round2, outcome));
  const round3 = r.next(all);
  t.deepEqual(round3.map((x) => x.try), [5, 6, 7, 8]);
  all.push(...run(round3, outcome));
  // 8 → 12 (the cap, not 16)
  const round4 = r.next(all);
  t.deepEqual(round4.map((x) => x.try), [9, 10, 11, 12]);
  all.push(...run(round4, outcome));
  t.deepEqual(r.next(all), [], 'capped: no more');
  const cells = [0, 1].map((c) => judgeCell(`a${c}`, 'y', 'direct', all.filter((a) => a.cell === c), '', 'udp'));
  t.deepEqual(cells.map((c) => c.tries), [12, 2]);
  t.deepEqual(r.summary(cells), { ciWidth: 0.3, maxTries: 12, rounds: 4, stopped: { interval: 1, settled: 1, error: 0, cap: 0 } });
});

test('the work queue: lanes wait for the next round, every try runs once, and the run ends when no round comes', async (t) => {
  const first = planned([{ cell: 0, expected: 'direct' }], 3);
  let rounds = 0;
  const ran: string[] = [];
  const q = new WorkQueue(first, () => (++rounds <= 2 ? planned([{ cell: rounds, expected: 'direct' }], 4) : []));
  const lane = async (name: string, ms: number) => {
    for (let att = await q.take(() => false); att; att = await q.take(() => false)) {
      await new Promise((r) => setTimeout(r, ms));
      ran.push(`${att.cell}.${att.try}`);
      q.finished();
    }
    return name;
  };
  const done = await Promise.all([lane('fast', 1), lane('slow', 7), lane('idle', 3), lane('idle2', 2)]);
  t.deepEqual(done, ['fast', 'slow', 'idle', 'idle2']);
  t.is(ran.length, 3 + 4 + 4);
  t.is(new Set(ran).size, ran.length, 'no try twice');
  // a round starts only when the one before has finished
  const roundOf = (s: string) => Number(s.split('.')[0]);
  t.deepEqual([...ran.map(roundOf)].sort((x, y) => x - y), ran.map(roundOf));
  t.is(q.total, 11);
});

test('a closing run takes nothing more', async (t) => {
  const q = new WorkQueue(planned([{ cell: 0, expected: 'direct' }], 3));
  t.truthy(await q.take(() => false));
  t.is(await q.take(() => true), undefined);
});
