// run: Lab + plan → judged attempts. One rendezvous serves the whole run (peers are keyed by session);
// each lane takes the next attempt, resets its two routers (fresh ruleset, empty conntrack), starts both
// peers, waits for their verdicts and, when the try did not connect, keeps the routers' state as evidence.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { agentCommand } from './agent.ts';
import { judgeCell, judgeTry, readVerdict } from './judge.ts';
import { renderRuleset, type NatType } from './nat.ts';
import { conntrackFlush, conntrackList, endPids, nftList, nftLoad, nsSpawn } from './netns.ts';
import type { Lab } from './lab.ts';
import type { Lane, PlannedAttempt, Side } from './plan.ts';
import type { Scenario } from './scenario.ts';
import type { Teardown } from './teardown.ts';
import type { AgentExit, Attempt, Cell } from './types.ts';

/** How long a peer may wait for the rendezvous to pair it, after it started. */
export const PAIRING_WAIT_MS = 5000;
/** Slack on top of an agent's own budgets before the harness kills it as hung. */
const HANG_GRACE_MS = 1500;
const READY_TIMEOUT_MS = 5000;

export interface RunOptions {
  outDir: string;
  /** called after every finished attempt */
  onAttempt?: (done: number, total: number, attempt: Attempt) => void;
}

export interface RunResult {
  attempts: Attempt[];
  cells: Cell[];
}

/** Fatal problem of the run itself (not of one cell): the rendezvous agent would not start. */
export class RunError extends Error {
  override name = 'RunError';
}

const cellDir = (a: string, b: string) => join('cells', `${a}-vs-${b}`);

function tail(text: string, lines = 3): string {
  return text.split('\n').filter(Boolean).slice(-lines).join('\n');
}

interface Rendezvous {
  address: string;
  /** set once the rendezvous process has ended */
  exited: () => string | null;
}

async function startRendezvous(lab: Lab, cmd: string[], secret: string, outDir: string, teardown: Teardown): Promise<Rendezvous> {
  const { rendezvous } = lab.plan;
  const listen = `${rendezvous.ip}:${rendezvous.port}`;
  const child = nsSpawn(rendezvous.ns, cmd, {
    env: { NMX_LISTEN: listen, NMX_SECRET: secret },
    reject: false,
    stdin: 'ignore',
    stdout: ['pipe', { file: join(outDir, 'rendezvous.stdout.log') }],
    stderr: ['pipe', { file: join(outDir, 'rendezvous.stderr.log') }],
    buffer: false,
  });
  const pid = child.pid;
  if (pid === undefined) throw new RunError('the rendezvous agent could not be started');
  const release = teardown.push(`stop rendezvous (pid ${pid})`, () => endPids([pid]));
  let exitNote: string | null = null;
  const done = child.then((r) => {
    release();
    exitNote = r.signal ? `rendezvous was killed by ${r.signal}` : `rendezvous exited with code ${r.exitCode}`;
    return exitNote;
  });
  // Wait on state: the rendezvous prints {"ready":true} once its socket is bound.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RunError(`the rendezvous agent printed no ready line within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const isReady = buffered.split('\n').some((line) => {
        try {
          return (JSON.parse(line) as { ready?: unknown }).ready === true;
        } catch {
          return false;
        }
      });
      if (isReady) {
        clearTimeout(timer);
        resolve();
      }
    });
    void done.then((note) => {
      clearTimeout(timer);
      reject(new RunError(`${note} before it was ready (see ${join(outDir, 'rendezvous.stderr.log')})`));
    });
  });
  return { address: listen, exited: () => exitNote };
}

async function resetRouter(side: Side, nat: NatType): Promise<void> {
  const ruleset = renderRuleset(nat, {
    WAN: side.wanIf, LAN: side.lanIf, WAN_IP: side.wanIp, HOST_IP: side.hostIp, HOST_PORT: side.hostPort, DMZ_PORT: side.dmzPort,
  });
  // new ruleset first (it flushes the dynamic maps), then forget every NAT binding of the previous try
  await nftLoad(side.router, ruleset);
  await conntrackFlush(side.router);
}

async function snapshotRouter(side: Side, dir: string): Promise<void> {
  const [nft, ct] = await Promise.allSettled([nftList(side.router), conntrackList(side.router)]);
  const text = (r: PromiseSettledResult<string>) => (r.status === 'fulfilled' ? r.value + '\n' : `could not read: ${(r.reason as Error).message}\n`);
  writeFileSync(join(dir, `router-${side.role}.nft`), text(nft));
  writeFileSync(join(dir, `router-${side.role}.conntrack`), text(ct));
}

interface AgentRun {
  cmd: string[];
  secret: string;
  rendezvous: string;
  timeoutMs: number;
  outDir: string;
  teardown: Teardown;
}

async function runPeer(side: Side, att: PlannedAttempt, dir: string, ctx: AgentRun): Promise<AgentExit> {
  const rel = relative(ctx.outDir, dir);
  const stdout = join(rel, `${side.role}.stdout`);
  const stderr = join(rel, `${side.role}.stderr`);
  const hardMs = PAIRING_WAIT_MS + ctx.timeoutMs + HANG_GRACE_MS;
  const started = performance.now();
  const child = nsSpawn(side.host, ctx.cmd, {
    env: {
      NMX_ROLE: side.role,
      NMX_SESSION: att.session,
      NMX_RENDEZVOUS: ctx.rendezvous,
      NMX_SECRET: ctx.secret,
      NMX_LOCAL_PORT: String(side.hostPort),
      NMX_TIMEOUT_MS: String(ctx.timeoutMs),
      NMX_WAIT_MS: String(PAIRING_WAIT_MS),
      NMX_NAT: side.role === 'a' ? att.a : att.b,
    },
    reject: false,
    stdin: 'ignore',
    stdout: ['pipe', { file: join(ctx.outDir, stdout) }],
    stderr: ['pipe', { file: join(ctx.outDir, stderr) }],
    timeout: hardMs,
    killSignal: 'SIGTERM',
    forceKillAfterDelay: 300,
    maxBuffer: 1_000_000,
  });
  const pid = child.pid;
  const release = pid === undefined ? () => {} : ctx.teardown.push(`stop agent ${side.role} (pid ${pid})`, () => endPids([pid]));
  const r = await child;
  release();
  const out = String(r.stdout ?? '');
  const err = String(r.stderr ?? '');
  const { verdict, problem } = readVerdict(out);
  return {
    role: side.role,
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    timedOut: Boolean(r.timedOut),
    durationMs: Math.round(performance.now() - started),
    verdict,
    verdictProblem: r.isMaxBuffer ? 'printed more than 1 MB on stdout or stderr' : problem,
    stderrTail: tail(err),
    stdout,
    stderr,
  };
}

async function runAttempt(lane: Lane, att: PlannedAttempt, ctx: AgentRun, rdv: Rendezvous): Promise<Attempt> {
  const dir = join(ctx.outDir, cellDir(att.a, att.b), `try-${att.try}`);
  mkdirSync(dir, { recursive: true });
  await Promise.all([resetRouter(lane.a, att.natA), resetRouter(lane.b, att.natB)]);
  const [ea, eb] = await Promise.all([runPeer(lane.a, att, dir, ctx), runPeer(lane.b, att, dir, ctx)]);
  const hardMs = PAIRING_WAIT_MS + ctx.timeoutMs + HANG_GRACE_MS;
  let verdict = judgeTry(ea, eb, hardMs);
  const rdvGone = rdv.exited();
  if (rdvGone && verdict.outcome !== 'direct') verdict = { ...verdict, outcome: 'error', reason: `${rdvGone} during the run; ${verdict.reason}` };
  if (verdict.outcome !== 'direct') await Promise.all([snapshotRouter(lane.a, dir), snapshotRouter(lane.b, dir)]);
  return {
    a: att.a,
    b: att.b,
    try: att.try,
    lane: lane.index,
    ...verdict,
    agents: { a: ea, b: eb },
    evidence: relative(ctx.outDir, dir),
  };
}

/** Run every planned attempt on the lab's lanes and judge the cells. */
export async function runAttempts(lab: Lab, scenario: Scenario, teardown: Teardown, opts: RunOptions): Promise<RunResult> {
  const { plan } = lab;
  const secret = randomBytes(16).toString('hex');
  const bundleDir = join(opts.outDir, 'agents');
  const [peerCmd, rdvCmd] = await Promise.all([
    agentCommand(scenario.agent.peer, bundleDir),
    agentCommand(scenario.agent.rendezvous, bundleDir),
  ]);
  const rdv = await startRendezvous(lab, rdvCmd, secret, opts.outDir, teardown);
  const ctx: AgentRun = { cmd: peerCmd, secret, rendezvous: rdv.address, timeoutMs: plan.timeoutMs, outDir: opts.outDir, teardown };

  const queue = [...plan.attempts];
  const attempts: Attempt[] = [];
  await Promise.all(
    plan.lanes.map(async (lane) => {
      for (let att = queue.shift(); att && !teardown.closing; att = queue.shift()) {
        let result: Attempt;
        try {
          result = await runAttempt(lane, att, ctx, rdv);
        } catch (cause) {
          if (teardown.closing) return;
          throw new RunError(`lane ${lane.index} failed while running ${att.a} × ${att.b}: ${(cause as Error).message}`, { cause });
        }
        attempts.push(result);
        opts.onAttempt?.(attempts.length, plan.attempts.length, result);
      }
    }),
  );

  const cells: Cell[] = [];
  for (const a of scenario.a) {
    for (const b of scenario.b) {
      const tries = attempts.filter((t) => t.a === a && t.b === b).sort((x, y) => x.try - y.try);
      const expected = plan.attempts.find((t) => t.a === a && t.b === b)!.expected;
      cells.push(judgeCell(a, b, expected, tries, cellDir(a, b)));
    }
  }
  return { attempts, cells };
}
