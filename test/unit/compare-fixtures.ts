// Reports for the compare tests, in the shape of a real report.json (runs/<…>/report.json of
// `npm run scenario`), built from counts.
import { wilson } from '../../harness/judge.ts';
import { summarize } from '../../harness/report.ts';
import type { Cell, Report } from '../../harness/types.ts';

export interface Counts {
  tries: number;
  /** connected tries by path; the rest failed, but for `errors` */
  paths?: Record<string, number>;
  errors?: number;
  agent?: string;
}

/** A cell of `tries` tries: `paths` connected (e.g. {"direct-udp": 3}), `errors` errored, the rest failed. */
export function cell(a: string, b: string, { tries, paths = {}, errors = 0, agent = 'udp-punch' }: Counts): Cell {
  const successes = Object.values(paths).reduce((s, n) => s + n, 0);
  const failures = tries - successes - errors;
  const path = Object.entries(paths).sort((x, y) => y[1] - x[1])[0]?.[0] ?? null;
  const outcome = errors > 0 || tries === 0 ? 'error' : successes > failures ? (path === 'relayed' ? 'relayed' : 'direct') : 'failed';
  return {
    agent,
    a,
    b,
    expected: 'direct',
    outcome,
    tries,
    successes,
    failures,
    errors,
    flaky: new Set([...Object.keys(paths), ...(failures ? ['failed'] : []), ...(errors ? ['error'] : [])]).size > 1,
    path,
    paths,
    timeToDirectMs: { median: successes ? 20 : null, max: successes ? 30 : null, samples: Array.from({ length: successes }, () => 20) },
    successRate: wilson(successes, tries),
    match: outcome === 'direct',
    reasons: failures ? ['no direct path within 600 ms'] : [],
    notes: [],
    evidence: `cells/${a}-vs-${b}`,
  };
}

/** A report of `cells`, as `npm run scenario` writes it. */
export function report(cells: Cell[], over: Partial<Report> = {}): Report {
  const rows = [...new Set(cells.map((c) => c.a))];
  const cols = [...new Set(cells.map((c) => c.b))];
  return {
    tool: 'natmatrix',
    version: '0.1.0',
    scenario: 'full-matrix',
    description: 'all five NAT types against each other (the textbook matrix)',
    runId: 'base01',
    startedAt: '2026-11-29T12:28:23.000Z',
    durationMs: 10_000,
    host: { kernel: '6.8.0', nft: 'v1.0.9', iproute2: '6.1.0', conntrack: '1.4.8', node: 'v22.0.0', cpus: 8 },
    options: { tries: 20, timeoutMs: 600, jobs: 4, observe: false },
    strategy: null,
    agents: [],
    natTypes: [],
    rows,
    cols,
    cells,
    isolation: { enforced: true, crossLaneDrops: {}, internetHops: 8, lowTtlDrops: 0 },
    summary: summarize(cells),
    comparison: [],
    outDir: '/tmp/runs/base01',
    ...over,
  };
}

/** {"direct-udp": n} */
export const direct = (n: number): Record<string, number> => ({ 'direct-udp': n });
