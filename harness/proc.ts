// Child processes for the harness's hot path, on node:child_process directly. A run starts hundreds of
// short `ip`/`nft`/`conntrack` processes and two agents per try; measured on the 2-core machine, this
// costs half of what execa costs per spawn and saves ~200 ms of start-up (execa's module graph through
// tsx's loader), which matters against a 2 s budget for a whole scenario. Always argv, never a shell.
//
// An agent is a process tree, not a PID: a wrapper script, a daemon it forks, a child that inherited its
// output pipes. With `group`, the process leads a process group of its own (a new session), and every
// signal the harness sends (the deadline, stop(), the end of the run) goes to the whole group. When the
// leader ends, members still running are "left behind": they are named in the result and ended. A
// process that left the group (setsid, a double fork) but still holds the output pipes cannot keep the
// result waiting: `pipeGraceMs` after the tree ended, reading stops. Such escapees are found and ended by
// the namespace sweep (netns.ts), which the caller runs.
import { spawn } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';

export interface ProcOptions {
  input?: string;
  /** keep stdin open as a pipe (Proc.stdin) instead of /dev/null or `input`: a server fed line by line */
  keepStdin?: boolean;
  /** keep stdout/stderr in memory for the result (default true); false: only the files and callbacks
   * get them (a long-lived process), and maxBuffer does not apply */
  collect?: boolean;
  /** added to the inherited environment */
  env?: Record<string, string>;
  /** SIGTERM after this long, SIGKILL `killGraceMs` later; the result says timedOut */
  timeoutMs?: number;
  /** count `timeoutMs` from when this marker appears on stderr (a launcher saying the real process
   * started), not from the spawn; until then the deadline is `timeoutMs + allowanceMs` from the spawn */
  deadlineFrom?: { marker: string; allowanceMs: number };
  killGraceMs?: number;
  /** lead a process group of its own: signals reach the whole tree, and members left running when
   * the leader ends are ended and reported (ProcResult.leftover) */
  group?: boolean;
  /** once the process (and its group) ended, wait at most this long for its output pipes to close;
   * a process outside the group that still holds them is not waited for (ProcResult.pipesHeld) */
  pipeGraceMs?: number;
  /** also write stdout / stderr to these files, as they arrive: at most `fileCap` characters each */
  stdoutFile?: string;
  stderrFile?: string;
  /** an evidence file keeps the first and the last half of this many characters, with a line saying
   * how much was cut between them (default EVIDENCE_CAP) */
  fileCap?: number;
  /** stop collecting (and kill) past this many characters per stream */
  maxBuffer?: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /** SIGKILL it (its group with `group`) when this aborts; already aborted: it is never started */
  signal?: AbortSignal;
}

export interface ProcResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  overflow: boolean;
  /** spawning itself failed (e.g. ENOENT) */
  spawnError: Error | null;
  /** with `group`: names of the group's processes still running when the leader ended (they were ended) */
  leftover: string[];
  /** the output pipes were still open `pipeGraceMs` after the tree ended: a process outside the group
   * held them, and reading stopped there */
  pipesHeld: boolean;
}

export interface Proc {
  pid: number | undefined;
  /** with `keepStdin`: the process's stdin (errors are ignored: it may exit without reading) */
  stdin?: NodeJS.WritableStream;
  done: Promise<ProcResult>;
  /** End the process (its whole group with `group`) now: `signal`, then SIGKILL after `killGraceMs`.
   * Resolves once it is gone. Safe to call after it ended. */
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

/** characters an evidence file keeps of one stream: its head and its tail, half each */
export const EVIDENCE_CAP = 1_000_000;

/**
 * A file that takes a stream's text as it arrives, up to `cap` characters: the first half is written
 * at once (a live log), the last half kept in memory and written at `end()`, after a line saying how
 * much was cut between them. What fits is written whole, with no mark.
 */
function cappedFile(path: string, cap: number): { write: (chunk: string) => void; end: () => Promise<void> } {
  const file = createWriteStream(path);
  let headLeft = Math.ceil(cap / 2);
  const tailMax = cap - headLeft;
  let tail: string[] = [];
  let tailSize = 0;
  let total = 0;
  return {
    write(chunk) {
      total += chunk.length;
      if (headLeft > 0) {
        const head = chunk.slice(0, headLeft);
        file.write(head);
        headLeft -= head.length;
        chunk = chunk.slice(head.length);
        if (chunk === '') return;
      }
      tail.push(chunk);
      tailSize += chunk.length;
      if (tailSize > 2 * tailMax) {
        // keep memory bounded: fold the kept tail into one string of tailMax
        const joined = tail.join('');
        tail = [joined.slice(joined.length - tailMax)];
        tailSize = tailMax;
      }
    },
    end() {
      let kept = tail.join('');
      if (kept.length > tailMax) kept = kept.slice(kept.length - tailMax);
      const cut = total - (cap - tailMax - headLeft) - kept.length;
      if (cut > 0) file.write(`\n[natmatrix: ${cut} characters cut here; this file keeps the first ${cap - tailMax} and the last ${kept.length} of ${total}]\n`);
      file.write(kept);
      return new Promise<void>((resolve) => file.end(resolve));
    },
  };
}

const DEFAULT_KILL_GRACE_MS = 300;
const DEFAULT_PIPE_GRACE_MS = 500;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function signal(target: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target, sig);
    return true;
  } catch {
    return false;
  }
}

/** Every PID /proc lists right now. */
export function procPids(): number[] {
  return readdirSync('/proc').flatMap((entry) => {
    const c = entry.charCodeAt(0);
    return c >= 48 && c <= 57 ? [Number(entry)] : [];
  });
}

/** A process's command name, state, parent and process group (from /proc/<pid>/stat), or null once it is gone. */
export function procStat(pid: number): { name: string; state: string; ppid: number; pgrp: number } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so split after the last ')'
  const close = stat.lastIndexOf(')');
  const [state = '', ppid, pgrp] = stat.slice(close + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, close), state, ppid: Number(ppid), pgrp: Number(pgrp) };
}

/** The process exists and is not a zombie (an ended process its parent has not reaped yet). */
export function isRunning(pid: number): boolean {
  const s = procStat(pid);
  return s !== null && s.state !== 'Z' && s.state !== 'X';
}

/**
 * Live (not zombie) members of process group `pgid`, with their command names. Reads /proc only when
 * the group still exists (a kill(-pgid, 0) says so), which is the rare case.
 */
export function groupMembers(pgid: number): Array<{ pid: number; name: string }> {
  if (!signal(-pgid, 0)) return [];
  return procPids().flatMap((pid) => {
    const s = procStat(pid);
    return s && s.pgrp === pgid && s.state !== 'Z' && s.state !== 'X' ? [{ pid, name: s.name }] : [];
  });
}

/** Send `sig` to the group, then SIGKILL it after `graceMs` if any member is still alive; resolves
 * once no live member is left (or after the SIGKILL had a moment to act). */
export async function endGroup(pgid: number, graceMs = DEFAULT_KILL_GRACE_MS, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!signal(-pgid, sig)) return;
  const until = performance.now() + graceMs;
  while (performance.now() < until) {
    await sleep(10);
    if (groupMembers(pgid).length === 0) return;
  }
  signal(-pgid, 'SIGKILL');
  for (let i = 0; i < 50 && groupMembers(pgid).length > 0; i++) await sleep(10);
}

export function startProc(file: string, args: string[], opts: ProcOptions = {}): Proc {
  if (opts.signal?.aborted) {
    const spawnError = new Error(`${file} not started: aborted`, { cause: opts.signal.reason });
    const result: ProcResult = { exitCode: null, signal: null, stdout: '', stderr: '', timedOut: false, overflow: false, spawnError, leftover: [], pipesHeld: false };
    return { pid: undefined, done: Promise.resolve(result), stop: () => Promise.resolve() };
  }
  const child = spawn(file, args, {
    stdio: [opts.input === undefined && !opts.keepStdin ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    // setsid(): the child leads a new session and process group, so -pid signals its whole tree
    detached: opts.group === true,
  });
  const group = opts.group === true && child.pid !== undefined;
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const max = opts.maxBuffer ?? 16_000_000;
  let timedOut = false;
  let overflow = false;
  let exited = false;
  let spawnError: Error | null = null;
  /** signal the tree (or the process) while its leader lives; after that, the exit handler owns it */
  const kill = (sig: NodeJS.Signals) => {
    if (exited || child.pid === undefined) return;
    if (!group || !signal(-child.pid, sig)) child.kill(sig);
  };
  const collect = (stream: NodeJS.ReadableStream & { destroy: () => void }, path: string | undefined, onChunk?: (c: string) => void) => {
    const parts: string[] = [];
    let size = 0;
    const file = path ? cappedFile(path, opts.fileCap ?? EVIDENCE_CAP) : null;
    let received = 0;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      received += chunk.length;
      file?.write(chunk);
      onChunk?.(chunk);
      if (overflow || opts.collect === false) return;
      if (size + chunk.length > max) {
        // keep what fits, as evidence of what the process was printing
        parts.push(chunk.slice(0, max - size));
        size = max;
        overflow = true;
        kill('SIGKILL');
        return;
      }
      size += chunk.length;
      parts.push(chunk);
    });
    let isClosed = false;
    const closed = new Promise<void>((resolve) => stream.on('close', resolve).on('end', resolve).on('error', () => resolve())).then(() => {
      isClosed = true;
    });
    return {
      text: () => parts.join(''),
      closed,
      isClosed: () => isClosed,
      received: () => received,
      /** stop reading (a process outside the tree holds the pipe) */
      abandon: () => stream.destroy(),
      flush: () => (file ? file.end() : Promise.resolve()),
    };
  };
  const out = collect(child.stdout!, opts.stdoutFile, opts.onStdout);
  let started = opts.deadlineFrom === undefined;
  const err = collect(child.stderr!, opts.stderrFile, (chunk) => {
    if (!started && chunk.includes(opts.deadlineFrom!.marker)) {
      started = true;
      if (opts.timeoutMs !== undefined) armDeadline(opts.timeoutMs);
    }
    opts.onStderr?.(chunk);
  });
  if (opts.input !== undefined || opts.keepStdin) {
    child.stdin!.on('error', () => {}); // the child may exit without reading
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  }
  let timers: NodeJS.Timeout[] = [];
  const terminate = (sig: NodeJS.Signals) => {
    kill(sig);
    timers.push(setTimeout(() => kill('SIGKILL'), killGraceMs));
  };
  const onAbort = () => kill('SIGKILL');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let deadline: NodeJS.Timeout | undefined;
  const armDeadline = (ms: number) => {
    clearTimeout(deadline);
    if (exited) return;
    deadline = setTimeout(() => {
      timedOut = true;
      terminate('SIGTERM');
    }, ms);
  };
  if (opts.timeoutMs !== undefined) armDeadline(opts.timeoutMs + (opts.deadlineFrom?.allowanceMs ?? 0));
  const done = new Promise<ProcResult>((resolve) => {
    const finish = async (exitCode: number | null, sig: NodeJS.Signals | null, started = true) => {
      exited = true;
      opts.signal?.removeEventListener('abort', onAbort);
      clearTimeout(deadline);
      timers.forEach(clearTimeout);
      timers = [];
      let leftover: string[] = [];
      let pipesHeld = false;
      if (started) {
        if (group) {
          // the leader is gone; its group must go with it
          leftover = groupMembers(child.pid!).map((m) => m.name);
          if (leftover.length) await endGroup(child.pid!, killGraceMs);
        }
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((r) => (timer = setTimeout(r, opts.pipeGraceMs ?? DEFAULT_PIPE_GRACE_MS)));
        await Promise.race([Promise.all([out.closed, err.closed]), grace]);
        clearTimeout(timer);
        // A starved harness (a loaded machine) can run the grace timer before it read what the tree
        // wrote before it ended: let the event loop poll the pipes until nothing more arrives, so only a
        // pipe that someone else keeps open, silently, is let go of.
        for (let polls = 0; polls < 50 && !(out.isClosed() && err.isClosed()); polls++) {
          const seen = out.received() + err.received();
          await new Promise((r) => setImmediate(r));
          await sleep(10);
          if (out.received() + err.received() === seen && polls >= 2) break;
        }
        if (!out.isClosed() || !err.isClosed()) {
          pipesHeld = true;
          out.abandon();
          err.abandon();
        }
        await Promise.all([out.flush(), err.flush()]);
      }
      resolve({ exitCode, signal: sig, stdout: out.text(), stderr: err.text(), timedOut, overflow, spawnError, leftover, pipesHeld });
    };
    child.once('error', (e) => {
      spawnError = e;
      if (child.pid === undefined) void finish(null, null, false);
    });
    child.once('exit', (code, sig) => void finish(code, sig));
  });
  const stop = async (sig: NodeJS.Signals = 'SIGTERM') => {
    if (!exited) terminate(sig);
    await done;
  };
  return { pid: child.pid, ...(opts.keepStdin ? { stdin: child.stdin! } : {}), done, stop };
}

export class CommandError extends Error {
  override name = 'CommandError';
}

/** Run a short command to completion; its stdout, or a CommandError naming the command and its stderr. */
export async function runProc(file: string, args: string[], input?: string, signal?: AbortSignal): Promise<string> {
  const r = await startProc(file, args, { ...(input === undefined ? {} : { input }), ...(signal ? { signal } : {}) }).done;
  if (r.exitCode === 0) return r.stdout.replace(/\n$/, '');
  const detail = (r.spawnError?.message ?? r.stderr.trim()) || `exit code ${r.exitCode ?? r.signal}`;
  throw new CommandError(`${file} ${args.join(' ')}: ${detail.split('\n').slice(0, 3).join(' | ')}`, { cause: r.spawnError ?? undefined });
}
