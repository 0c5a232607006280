// judge: what the agents said and how they ended → the outcome of a try, and tries → a cell.
// Pure functions. A clean "no path" from both agents is `failed`; anything the agent contract does not
// allow (crash, hang, garbage, contradiction) is `error`, so a broken agent never passes for a NAT result.
import { z } from 'zod';
import { isRate, type Expectation, type RateExpectation } from './expect.ts';
import type { VerdictRule } from './manifest.ts';
import { outcomeOfPath, type AgentExit, type AgentVerdict, type Attempt, type Cell, type Expected, type Outcome } from './types.ts';

/** The verdict line (agents/contract.json is generated from this schema). */
export const verdictSchema = z
  .object({
    ok: z.boolean().describe('connected (exit 0) or not (exit 1)'),
    path: z.string().nullish().describe('which path won: direct-udp, direct-tcp, relayed (counts as relayed, not direct), matconnect, plain-udp, or any other name (counts as direct); both agents must name the same'),
    peer: z.string().nullish().describe('the partner as this side reached it, ip:port: required on a connected verdict (checked against the partner\'s addresses)'),
    timeToDirectMs: z.number().nonnegative().nullish().describe('ms from learning the peer to a confirmed two-way path (budget timing: from start, measured by the harness when absent)'),
    reason: z.string().nullish().describe('why not, for ok false'),
    steps: z
      .array(z.object({ path: z.string(), ok: z.boolean(), ms: z.number(), reason: z.string().nullish() }).passthrough())
      .optional()
      .describe('optional, for agents with a fallback strategy: what each step did, in order'),
  })
  .passthrough();

const clip = (s: string, n = 120) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

/** Read the contract's verdict: the last non-empty stdout line, as JSON. */
export function readVerdict(stdout: string): { verdict: AgentVerdict | null; problem: string | null } {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.at(-1);
  if (last === undefined) return { verdict: null, problem: 'printed no verdict line on stdout' };
  let json: unknown;
  try {
    json = JSON.parse(last);
  } catch {
    return { verdict: null, problem: `last stdout line is not JSON: ${JSON.stringify(clip(last, 80))}` };
  }
  const r = verdictSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { verdict: null, problem: `verdict line ${clip(last, 80)} is not valid: ${issue?.path.join('.') || 'line'}: ${issue?.message}` };
  }
  const v = r.data;
  return {
    verdict: { ok: v.ok, path: v.path ?? undefined, peer: v.peer ?? undefined, timeToDirectMs: v.timeToDirectMs ?? undefined, reason: v.reason ?? undefined },
    problem: null,
  };
}

type AgentState = { kind: 'connected' | 'failed'; verdict: AgentVerdict } | { kind: 'error'; reason: string };

function agentState(x: AgentExit, hardDeadlineMs: number): AgentState {
  const who = `agent ${x.role}`;
  const tail = x.stderrTail ? ` (stderr: ${clip(x.stderrTail.split('\n').filter(Boolean).at(-1) ?? '')})` : '';
  if (x.timedOut) return { kind: 'error', reason: `${who} hung: still running at the ${hardDeadlineMs} ms deadline, killed` };
  if (x.problem) return { kind: 'error', reason: `${who} ${x.problem}${tail}` };
  if (x.signal) return { kind: 'error', reason: `${who} was killed by ${x.signal}${tail}` };
  if (x.exitCode !== 0 && x.exitCode !== 1) {
    return { kind: 'error', reason: `${who} crashed: exit code ${x.exitCode}${x.verdict?.reason ? `: ${x.verdict.reason}` : tail}` };
  }
  if (!x.verdict) return { kind: 'error', reason: `${who} exited ${x.exitCode} but ${x.verdictProblem ?? 'gave no verdict'}` };
  if (x.exitCode === 0 && x.verdict.ok) return { kind: 'connected', verdict: x.verdict };
  if (x.exitCode === 1 && !x.verdict.ok) return { kind: 'failed', verdict: x.verdict };
  return { kind: 'error', reason: `${who} contradicts itself: exit code ${x.exitCode} with "ok": ${x.verdict.ok}` };
}

export interface TryVerdict {
  outcome: Outcome;
  reason: string | null;
  path: string | null;
  timeToDirectMs: number | null;
  notes: string[];
}

/** Who a peer may say it connected to: its partner's addresses as the partner can be seen from it (the
 * outermost router's public address, a cloud host's own public address, on a same-site pairing also the
 * partner's LAN address) and, on a relayed path, the run's services (relay, TURN). Addresses only: the
 * ports are the NATs' to choose. */
export interface PeerView {
  /** "b" for agent a */
  partner: 'a' | 'b';
  addresses: string[];
  services: string[];
}

/** The address of an "ip:port" peer (IPv4, or [IPv6]:port), or null when it is not one. */
export function peerAddress(peer: string): string | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(peer.trim());
  if (!m || Number(m[3]) > 65535) return null;
  return m[1] ?? m[2]!;
}

/** Why a connected agent's `peer` is not believable, or null when it names its partner. */
export function peerProblem(x: AgentExit, view: PeerView, path: string): string | null {
  const who = `agent ${x.role}`;
  const peer = x.verdict?.peer;
  if (peer === undefined || peer === null || peer === '') return `${who} says it connected but names no peer (a connected verdict must say who answered: "peer": "ip:port")`;
  const ip = peerAddress(peer);
  if (ip === null) return `${who} names peer ${JSON.stringify(peer)}, which is not an ip:port`;
  const relayed = path === 'relayed';
  if (view.addresses.includes(ip) || (relayed && view.services.includes(ip))) return null;
  const seen = `${view.partner} is seen as ${view.addresses.join(' or ')}${relayed ? `, the run's relays are ${view.services.join(', ')}` : ''}`;
  const service = !relayed && view.services.includes(ip) ? ` (a service of the run: a path through it is "relayed", not ${path})` : '';
  return `${who} says it connected to ${peer}, which is not its partner${service}: ${seen}`;
}

/** "agent a left 2 processes running when it ended (sleep, node); the harness ended them" */
function leftoverNote(x: AgentExit): string[] {
  const n = x.leftover.length;
  if (n === 0) return [];
  const names = [...new Set(x.leftover)].join(', ');
  return [`agent ${x.role} left ${n} process${n === 1 ? '' : 'es'} running when it ended (${names}); the harness ended ${n === 1 ? 'it' : 'them'}`];
}

/** How a try is judged: who decides (the agent's verdict rule), and whether the harness measures the
 * time to connect when the agent reports none (budget timing). */
export interface JudgeOptions {
  rule?: VerdictRule;
  measuredTime?: boolean;
}

/** Judge one try from both agents' exits. Notes (processes left behind) ride along whatever the
 * outcome, and are added to the reason of a try that did not connect. */
export function judgeTry(a: AgentExit, b: AgentExit, hardDeadlineMs: number, views?: { a: PeerView | null; b: PeerView | null }, opts: JudgeOptions = {}): TryVerdict {
  const notes = [...leftoverNote(a), ...leftoverNote(b)];
  const rule = opts.rule ?? 'both';
  let v = judgeExits(a, b, hardDeadlineMs, rule);
  if ((v.outcome === 'direct' || v.outcome === 'relayed') && views) {
    // a verdict's peer is not taken on trust: every side whose verdict counted must name its partner
    // (or, on a relayed path, a relay it went through)
    const counted = ([[a, views.a], [b, views.b]] as const).filter(([x]) => decides(x, rule) && connectedExit(x));
    const problems = counted.flatMap(([x, view]) => (view ? [peerProblem(x, view, v.path ?? 'direct')] : [])).filter((p): p is string => p !== null);
    if (problems.length) v = { outcome: 'error', reason: problems.join('; '), path: null, timeToDirectMs: null };
  }
  if ((v.outcome === 'direct' || v.outcome === 'relayed') && v.timeToDirectMs === null && opts.measuredTime) {
    // a stack that does not say when it learned its peer: the time from its start to its verdict
    const times = [a, b].filter((x) => decides(x, rule) && connectedExit(x)).map((x) => x.durationMs);
    if (times.length) v = { ...v, timeToDirectMs: Math.min(...times) };
  }
  const reason = v.reason !== null && notes.length ? `${v.reason}; ${notes.join('; ')}` : v.reason;
  return { ...v, reason, notes };
}

const connectedExit = (x: AgentExit) => x.exitCode === 0 && x.verdict?.ok === true;

/** Does this side's verdict count under the rule? (With "either", a side the harness ended because the
 * other had connected does not.) */
function decides(x: AgentExit, rule: VerdictRule): boolean {
  if (rule === 'a' || rule === 'b') return x.role === rule;
  return !(rule === 'either' && x.stopped);
}

/** A side whose verdict does not count is still a fault when it broke by itself: it crashed, was
 * killed by something else, or hung; ending without a verdict, or being ended by the harness, is fine. */
function bystanderFault(x: AgentExit, hardDeadlineMs: number): string | null {
  if (x.stopped) return null;
  const s = agentState(x, hardDeadlineMs);
  return s.kind === 'error' && (x.timedOut || x.signal !== null || (x.exitCode !== 0 && x.exitCode !== 1)) ? s.reason : null;
}

function judgeExits(a: AgentExit, b: AgentExit, hardDeadlineMs: number, rule: VerdictRule): Omit<TryVerdict, 'notes'> {
  const none = { path: null, timeToDirectMs: null };
  if (rule === 'a' || rule === 'b') {
    const [judged, other] = rule === 'a' ? [a, b] : [b, a];
    const s = agentState(judged, hardDeadlineMs);
    const fault = bystanderFault(other, hardDeadlineMs);
    if (s.kind === 'error' || fault) return { outcome: 'error', reason: [s.kind === 'error' ? s.reason : null, fault].filter(Boolean).join('; '), ...none };
    if (s.kind === 'failed') return { outcome: 'failed', reason: `${judged.role}: ${s.verdict.reason ?? 'no reason given'}`, ...none };
    const path = s.verdict.path ?? 'direct';
    return { outcome: outcomeOfPath(path), reason: null, path, timeToDirectMs: s.verdict.timeToDirectMs ?? null };
  }
  if (rule === 'either') {
    const live = [a, b].filter((x) => !x.stopped);
    const states = live.map((x) => agentState(x, hardDeadlineMs));
    const errors = states.flatMap((s) => (s.kind === 'error' ? [s.reason] : []));
    if (errors.length) return { outcome: 'error', reason: errors.join('; '), ...none };
    const won = states.filter((s): s is { kind: 'connected'; verdict: AgentVerdict } => s.kind === 'connected');
    if (won.length === 0) {
      const why = live.map((x, i) => `${x.role}: ${(states[i] as { verdict: AgentVerdict }).verdict.reason ?? 'no reason given'}`);
      return { outcome: 'failed', reason: why.join('; '), ...none };
    }
    const paths = [...new Set(won.map((s) => s.verdict.path ?? null).filter((p): p is string => p !== null))];
    if (paths.length > 1) return { outcome: 'error', reason: `agents disagree on the path: a says ${paths[0]}, b says ${paths[1]}`, ...none };
    const path = paths[0] ?? 'direct';
    const times = won.flatMap((s) => (s.verdict.timeToDirectMs === undefined ? [] : [s.verdict.timeToDirectMs]));
    return { outcome: outcomeOfPath(path), reason: null, path, timeToDirectMs: times.length ? Math.min(...times) : null };
  }
  const sa = agentState(a, hardDeadlineMs);
  const sb = agentState(b, hardDeadlineMs);
  if (sa.kind === 'error' || sb.kind === 'error') {
    const reasons = [sa, sb].flatMap((s) => (s.kind === 'error' ? [s.reason] : []));
    return { outcome: 'error', reason: reasons.join('; '), ...none };
  }
  if (sa.kind === 'connected' && sb.kind === 'connected') {
    const [pa, pb] = [sa.verdict.path ?? null, sb.verdict.path ?? null];
    // two ends of one connection cannot have taken different paths (one relayed, one direct)
    if (pa !== null && pb !== null && pa !== pb) {
      return { outcome: 'error', reason: `agents disagree on the path: a says ${pa}, b says ${pb}`, ...none };
    }
    const path = pa ?? pb ?? 'direct';
    const times = [sa.verdict.timeToDirectMs, sb.verdict.timeToDirectMs].filter((t): t is number => t !== undefined);
    return {
      outcome: outcomeOfPath(path),
      reason: null,
      path,
      timeToDirectMs: times.length ? Math.max(...times) : null,
    };
  }
  if (sa.kind === 'failed' && sb.kind === 'failed') {
    return { outcome: 'failed', reason: `a: ${sa.verdict.reason ?? 'no reason given'}; b: ${sb.verdict.reason ?? 'no reason given'}`, ...none };
  }
  const [yes, no] = sa.kind === 'connected' ? (['a', 'b'] as const) : (['b', 'a'] as const);
  const noState = (no === 'a' ? sa : sb) as { verdict: AgentVerdict };
  return {
    outcome: 'error',
    reason: `agents disagree: ${yes} connected, ${no} did not (${noState.verdict.reason ?? 'no reason given'})`,
    ...none,
  };
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * 95 % Wilson score interval for `k` successes in `n` tries: unlike the normal approximation it stays
 * inside [0, 1] and is meaningful for 0/n and n/n, which is what most cells are.
 */
export function wilson(k: number, n: number, z = 1.96): { rate: number; low: number; high: number } {
  if (n === 0) return { rate: 0, low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return { rate: r3(p), low: r3(Math.max(0, center - half)), high: r3(Math.min(1, center + half)) };
}

/** Does a cell's outcome (and path) satisfy what was expected of it? (Rates and observe-only are
 * judged in judgeCell.) */
export function satisfies(expected: Expected, outcome: Outcome, path: string | null): boolean {
  if (expected === 'direct' || expected === 'relayed' || expected === 'failed') return outcome === expected;
  return (outcome === 'direct' || outcome === 'relayed') && path === expected;
}

/**
 * A success-rate expectation against the tries: the rate (of tries connected, by `path` when named)
 * with its 95 % Wilson interval. It holds unless the interval lies wholly below the expected rate (the
 * tries show the rate is lower); it is `confirmed` once the interval lies wholly at or above it.
 */
export function judgeRate(e: RateExpectation, tries: Attempt[]): NonNullable<Cell['rate']> {
  const hits = tries.filter((t) => connected(t.outcome) && (e.path === undefined || t.path === e.path)).length;
  const w = wilson(hits, tries.length);
  return { atLeast: e.atLeast, ...(e.path ? { path: e.path } : {}), successes: hits, low: w.low, high: w.high, holds: w.high >= e.atLeast, confirmed: w.low >= e.atLeast };
}

const connected = (o: Outcome) => o === 'direct' || o === 'relayed';

/** Tries grouped by the cell they were planned for (its `cell` index), in the order given. */
export function triesByCell(attempts: readonly Attempt[]): Map<number, Attempt[]> {
  const byCell = new Map<number, Attempt[]>();
  for (const t of attempts) {
    const own = byCell.get(t.cell);
    if (own) own.push(t);
    else byCell.set(t.cell, [t]);
  }
  return byCell;
}

/** Fold the tries of one pairing into a cell. Any errored try makes the cell `error`; tries that
 * disagree (in outcome, or in the path they connected by) make it flaky, and a flaky cell never counts
 * as matching its expectation. */
export function judgeCell(a: string, b: string, expected: Expectation, tries: Attempt[], evidence: string, agent = ''): Cell {
  const count = (o: Outcome) => tries.filter((t) => t.outcome === o).length;
  const successes = tries.filter((t) => connected(t.outcome)).length;
  const failures = count('failed');
  const errors = count('error');
  const paths: Record<string, number> = {};
  for (const t of tries) if (connected(t.outcome)) paths[t.path ?? 'direct'] = (paths[t.path ?? 'direct'] ?? 0) + 1;
  // the most frequent path; on a tie, the earliest to win a try
  const path = Object.entries(paths).sort((x, y) => y[1] - x[1])[0]?.[0] ?? null;
  const flaky = new Set(tries.map((t) => (connected(t.outcome) ? `${t.outcome}:${t.path ?? 'direct'}` : t.outcome))).size > 1;
  // a cell with no tries (the run was cut short) is a fault, never a quiet "failed" that might match
  const outcome: Outcome = errors > 0 || tries.length === 0 ? 'error' : successes > failures ? outcomeOfPath(path) : 'failed';
  const times = tries.flatMap((t) => (connected(t.outcome) && t.timeToDirectMs !== null ? [t.timeToDirectMs] : []));
  const round = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  const rate = isRate(expected) ? judgeRate(expected, tries) : null;
  // observe-only: nothing expected, so anything but a fault is fine; a rate: its interval decides, and
  // tries that differ are what a rate expects; otherwise the outcome (and path) must match, unflaky
  const match = outcome === 'error' ? false : expected === null ? true : isRate(expected) ? rate!.holds : !flaky && satisfies(expected, outcome, path);
  return {
    agent,
    a,
    b,
    expected,
    ...(rate ? { rate } : {}),
    outcome,
    tries: tries.length,
    successes,
    failures,
    errors,
    flaky,
    path: outcome === 'failed' || outcome === 'error' ? null : path,
    paths,
    timeToDirectMs: { median: round(median(times)), max: round(times.length ? Math.max(...times) : null), samples: times },
    successRate: wilson(successes, tries.length),
    match,
    // an error outranks a clean failure: reports print the first reason, which must say what went wrong
    notes: [...new Set(tries.flatMap((t) => t.notes ?? []))],
    reasons: tries.length === 0 ? ['no try ran'] : [...new Set([...tries.filter((t) => t.outcome === 'error'), ...tries.filter((t) => t.outcome !== 'error')].flatMap((t) => (t.reason ? [t.reason] : [])))],
    evidence,
  };
}
