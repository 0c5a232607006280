// Adaptive tries (--ci-width W, --max-tries N): instead of a fixed number of tries per cell, rounds.
// The first round is the plan's tries; after each, every cell that is not yet decided gets as many
// tries again (its count doubles, up to the cap). A cell is decided when its 95 % Wilson interval is
// at most W wide, when its expectation is settled whatever more tries would show (a success-rate
// expectation confirmed or refuted, an outcome expectation already missed), or when it errored.
// Pure: the run loop (run.ts) asks for the next round once a round has finished.
import { judgeCell, triesByCell } from './judge.ts';
import type { PlannedAttempt } from './plan.ts';
import type { AdaptiveSummary, Attempt, Cell } from './types.ts';

export type { AdaptiveSummary };

export interface AdaptiveOptions {
  /** the widest 95 % interval a cell may stop at, 0 < W < 1 */
  ciWidth: number;
  /** most tries of one cell */
  maxTries: number;
}

/** Why a cell needs no more tries, or null while it does. */
export type Decision = 'interval' | 'settled' | 'error' | 'cap' | null;

/** The interval that decides a cell: its success-rate expectation's (by path), else connected tries'. */
export function intervalOf(c: Cell): { low: number; high: number } {
  return c.rate ? { low: c.rate.low, high: c.rate.high } : { low: c.successRate.low, high: c.successRate.high };
}

export function decision(c: Cell, o: AdaptiveOptions): Decision {
  if (c.errors > 0) return 'error';
  const { low, high } = intervalOf(c);
  // the Wilson bounds in a report are rounded to 3 decimals
  if (high - low <= o.ciWidth + 1e-9) return 'interval';
  if (c.rate && (c.rate.confirmed || !c.rate.holds)) return 'settled';
  // an outcome expectation ("direct", "failed", a path) missed once stays missed: more tries cannot mend it
  if (!c.rate && c.expected !== null && !c.match) return 'settled';
  if (c.tries >= o.maxTries) return 'cap';
  return null;
}

/**
 * The round planner of one run: `next(attempts)` gives the tries of the next round (none: the run is
 * done); `summary(cells)` what the rounds came to.
 */
export function adaptiveRounds(planned: readonly PlannedAttempt[], o: AdaptiveOptions, agentNames: string[]): { next: (attempts: Attempt[]) => PlannedAttempt[]; summary: (cells: Cell[]) => AdaptiveSummary } {
  const first = new Map<number, PlannedAttempt>();
  for (const t of planned) if (!first.has(t.cell)) first.set(t.cell, t);
  let rounds = 1;
  const judge = (attempts: Attempt[]) => {
    const byCell = triesByCell(attempts);
    return [...first.values()].map((p) => {
      const tries = byCell.get(p.cell) ?? [];
      return { p, tries, cell: judgeCell(p.a, p.b, p.expected, tries, '', agentNames[p.agent] ?? '') };
    });
  };
  return {
    next(attempts) {
      const more: PlannedAttempt[] = [];
      for (const { p, tries, cell } of judge(attempts)) {
        if (decision(cell, o) !== null) continue;
        const have = tries.length;
        const last = Math.max(0, ...tries.map((t) => t.try));
        const add = Math.min(o.maxTries, Math.max(1, have) * 2) - have;
        const session = p.session.replace(/\.\d+$/, '');
        for (let k = 1; k <= add; k++) more.push({ ...p, try: last + k, session: `${session}.${last + k}` });
      }
      if (more.length) rounds++;
      // expected-to-fail tries first, as in the plan: they cost a whole window
      return more.sort((x, y) => Number(x.expected === 'direct') - Number(y.expected === 'direct') || x.cell - y.cell || x.try - y.try);
    },
    summary(cells) {
      const stopped: AdaptiveSummary['stopped'] = { interval: 0, settled: 0, error: 0, cap: 0 };
      for (const c of cells) stopped[decision(c, o) ?? 'cap']++;
      return { ciWidth: o.ciWidth, maxTries: o.maxTries, rounds, stopped };
    },
  };
}
