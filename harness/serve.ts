// Agents that stay up: a manifest's `"serve": true` (the protocol is SERVE's, agents/sdk/contract.ts).
//
//   lane k   host a                         routers a, b                        host b
//            agent process ◀─ {"try":…} ─┐  reset for every try  ┌─ {"try":…} ─▶ agent process
//            (one, started at its first  └── harness (run.ts) ───┘   (one per agent per host)
//             try, serving every later)  ◀── {"try":…,"exit":…,"verdict":…} ──▶
//
// A server starts (confined like any agent, in the host's namespace) the first time a lane runs one of
// its agent's tries on that host, and serves that host's later tries of the agent. Starting Node is then
// paid once per lane instead of twice per try. A try is judged exactly as a one-shot peer's would be:
// its reply carries the exit code and the verdict; what the agent writes on stderr while the try runs is
// the try's evidence. A reply that does not come by the try's deadline, a server that ends mid-try, or
// one that prints anything but the reply: the try is an error, the server is ended (and awaited, so it
// holds no port) and the host's next try starts a new one — nothing of a broken process is reused.
import { SERVE, type PeerEnv, type ServeReply } from '../agents/sdk/contract.ts';
import { CONFINE_START_ALLOWANCE_MS, type Confinement } from './confine.ts';
import { RunError } from './errors.ts';
import type { Proc, ProcResult } from './proc.ts';
import { isReadyLine, startTracked } from './supervise.ts';
import type { Teardown } from './teardown.ts';

/** What one try came to. */
export interface ServedTry {
  /** the agent's reply line (its text) and what it says; null when there is none */
  reply: ServeReply | null;
  replyLine: string;
  /** why the try has no usable reply (no reply by the deadline, the server ended, garbage) */
  problem: string | null;
  /** no reply by the deadline: the server was ended */
  timedOut: boolean;
  /** the server ended during the try: how */
  ended: { exitCode: number | null; signal: NodeJS.Signals | null } | null;
  /** what the agent wrote on stderr while the try ran */
  stderr: string;
}

/** Beyond a try's own stop grace (the SDK's STOP_GRACE_MS): when an unanswered stop ends the server. */
const STOP_ANSWER_MS = 1500;
/** A reply line longer than this is garbage. */
const MAX_LINE = 1_000_000;
/** Evidence kept of one try's stderr. */
const MAX_TRY_STDERR = 1_000_000;

const clip = (s: string, n = 80) => JSON.stringify(s.length > n ? `${s.slice(0, n)}…` : s);

function how(r: ProcResult): string {
  if (r.spawnError) return `could not be started: ${r.spawnError.message}`;
  return r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`;
}

interface Current {
  id: string;
  stderr: string[];
  size: number;
  settle: (x: Omit<ServedTry, 'stderr'>) => void;
}

/** One serving agent process on one host. */
export class AgentServer {
  /** resolves once it printed its ready line; rejects (RunError) when it ends or garbles first */
  readonly ready: Promise<void>;
  /** why it serves no more tries (it ended, hung, printed garbage); null while it can */
  broken: string | null = null;
  private readonly proc: Proc;
  private readonly ended: Promise<ProcResult>;
  private line = '';
  private isReady = false;
  private current: Current | null = null;
  /** the last stderr it wrote, for why it could not start */
  private tail = '';
  private readyFailed: (e: Error) => void = () => {};

  constructor(host: string, argv: string[], o: { env: Record<string, string>; confine: Confinement | null; logFile: string; label: string; teardown: Teardown }) {
    let readyOk = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      readyOk = resolve;
      this.readyFailed = reject;
    });
    this.ready.catch(() => {});
    const timer = setTimeout(() => this.fail(`printed no ready line within ${CONFINE_START_ALLOWANCE_MS} ms`), CONFINE_START_ALLOWANCE_MS);
    void this.ready.then(() => clearTimeout(timer), () => clearTimeout(timer));
    this.proc = startTracked(host, argv, {
      env: { ...o.env, [SERVE.env]: '1' },
      confine: o.confine,
      keepStdin: true,
      collect: false,
      stderrFile: o.logFile,
      killGraceMs: 300,
      onStdout: (chunk) => {
        this.line += chunk;
        for (let nl = this.line.indexOf('\n'); nl >= 0; nl = this.line.indexOf('\n')) {
          const text = this.line.slice(0, nl).trim();
          this.line = this.line.slice(nl + 1);
          if (text === '') continue;
          if (this.isReady) this.onLine(text);
          else if (isReadyLine(text)) {
            this.isReady = true;
            readyOk();
          } else this.fail(`printed ${clip(text)} before its ready line ${SERVE.ready}`);
        }
        if (this.line.length > MAX_LINE) this.fail(`printed more than ${MAX_LINE} characters without a newline`);
      },
      onStderr: (chunk) => {
        this.tail = (this.tail + chunk).slice(-2000);
        const c = this.current;
        if (c && c.size < MAX_TRY_STDERR) {
          c.stderr.push(chunk.slice(0, MAX_TRY_STDERR - c.size));
          c.size += chunk.length;
        }
      },
    }, o.teardown, o.label);
    this.ended = this.proc.done.then((r) => {
      const why = how(r);
      this.broken ??= `ended: it ${why}`;
      const lastLine = this.tail.split('\n').filter(Boolean).at(-1);
      this.readyFailed(new RunError(`${o.label} ${why} before it was ready${lastLine ? ` (stderr: ${lastLine})` : ''}`));
      this.settle({ reply: null, replyLine: '', problem: `ended during the try: it ${why}`, timedOut: false, ended: { exitCode: r.exitCode, signal: r.signal } });
      return r;
    });
  }

  /** The process group the server's processes are in (the namespace sweep spares it). */
  get group(): number | undefined {
    return this.broken ? undefined : this.proc.pid;
  }

  private settle(x: Omit<ServedTry, 'stderr'>): void {
    const c = this.current;
    if (!c) return;
    this.current = null;
    c.settle(x);
  }

  /** It can serve no more: end it, and the try running (if any) ends with `why`. */
  private fail(why: string, timedOut = false): void {
    if (this.broken) return;
    this.broken = why;
    this.readyFailed(new RunError(`the agent ${why}`));
    // the try settles once the process is gone (it may hold the port the next one binds)
    const c = this.current;
    this.current = null;
    void this.proc.stop().then(() => c?.settle({ reply: null, replyLine: '', problem: why, timedOut, ended: null }));
  }

  private onLine(text: string): void {
    const c = this.current;
    if (!c) return this.fail(`printed ${clip(text)} while no try was running`);
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      return this.fail(`printed ${clip(text)} instead of the reply to try ${c.id}`);
    }
    const r = reply as Partial<ServeReply> | null;
    if (typeof r !== 'object' || r === null || r.try !== c.id || !Number.isInteger(r.exit)) {
      return this.fail(`printed ${clip(text)} instead of the reply to try ${c.id} ({"try":"${c.id}","exit":<code>,"verdict":{…}})`);
    }
    this.settle({ reply: r as ServeReply, replyLine: text, problem: null, timedOut: false, ended: null });
    // it serves no more (a try left something open): it exits by itself, the next try gets a new one
    if (r.last === true) void this.close();
  }

  /**
   * Run one try: its environment to the agent, its reply back. With no reply `hardMs` after sending it,
   * the server is ended and the try timed out. `stop()` asks the agent to end the try early.
   */
  runTry(id: string, env: PeerEnv, hardMs: number): { done: Promise<ServedTry>; stop: () => void } {
    let stopTimer: NodeJS.Timeout | undefined;
    const done = new Promise<ServedTry>((resolve) => {
      if (this.broken || !this.proc.stdin) {
        resolve({ reply: null, replyLine: '', problem: this.broken ?? 'has no stdin', timedOut: false, ended: null, stderr: '' });
        return;
      }
      const deadline = setTimeout(() => this.fail(`gave no reply to try ${id} within ${hardMs} ms`, true), hardMs);
      const c: Current = {
        id,
        stderr: [],
        size: 0,
        settle: (x) => {
          clearTimeout(deadline);
          clearTimeout(stopTimer);
          resolve({ ...x, stderr: c.stderr.join('') });
        },
      };
      this.current = c;
      this.proc.stdin.write(`${JSON.stringify({ try: id, env })}\n`);
    });
    const stop = () => {
      if (this.current?.id !== id || this.broken) return;
      this.proc.stdin?.write(`${JSON.stringify({ stop: id })}\n`);
      stopTimer = setTimeout(() => this.current?.id === id && this.fail(`did not answer the stop of try ${id}`), STOP_ANSWER_MS);
    };
    return { done, stop };
  }

  /** No more tries: close its stdin (it exits 0), and end it if it has not within a grace. */
  async close(graceMs = 1000): Promise<void> {
    this.broken ??= 'closed';
    this.proc.stdin?.end();
    const timer = setTimeout(() => void this.proc.stop(), graceMs);
    await this.ended;
    clearTimeout(timer);
  }
}

/** The serving processes of a run, by agent and host: started on first use, replaced once broken. */
export class ServerPool {
  private readonly servers = new Map<string, { host: string; server: AgentServer }>();
  private readonly started = new Map<string, number>();

  /** The server of `agent` on `host`, started with `start` (given how many were started there
   * before) unless a working one is there; a new one only once the last is gone (it may hold a port). */
  async get(agent: number, host: string, start: (before: number) => AgentServer): Promise<AgentServer> {
    const key = `${agent}/${host}`;
    const have = this.servers.get(key);
    if (have && !have.server.broken) return have.server;
    if (have) await have.server.close();
    const before = this.started.get(key) ?? 0;
    this.started.set(key, before + 1);
    const server = start(before);
    this.servers.set(key, { host, server });
    return server;
  }

  /** Process groups of the working servers on `host` (a sweep of the host's namespace spares them). */
  groupsOn(host: string): Set<number> {
    const out = new Set<number>();
    for (const s of this.servers.values()) if (s.host === host && s.server.group !== undefined) out.add(s.server.group);
    return out;
  }

  /** Close the servers on these hosts (all, without). */
  async close(hosts?: string[]): Promise<void> {
    const closing = [...this.servers].filter(([, s]) => !hosts || hosts.includes(s.host));
    for (const [key] of closing) this.servers.delete(key);
    await Promise.all(closing.map(([, s]) => s.server.close()));
  }
}
