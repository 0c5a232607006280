// Child processes for the harness's hot path, on node:child_process directly. A run starts hundreds of
// short `ip`/`nft`/`conntrack` processes and two agents per try; measured on the 2-core machine, this
// costs half of what execa costs per spawn and saves ~200 ms of start-up (execa's module graph through
// tsx's loader), which matters against a 2 s budget for a whole scenario. Always argv, never a shell.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface ProcOptions {
  input?: string;
  /** added to the inherited environment */
  env?: Record<string, string>;
  /** SIGTERM after this long, SIGKILL `killGraceMs` later; the result says timedOut */
  timeoutMs?: number;
  killGraceMs?: number;
  /** also write stdout / stderr to these files, as they arrive */
  stdoutFile?: string;
  stderrFile?: string;
  /** stop collecting (and kill) past this many characters per stream */
  maxBuffer?: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
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
}

export interface Proc {
  pid: number | undefined;
  done: Promise<ProcResult>;
}

export function startProc(file: string, args: string[], opts: ProcOptions = {}): Proc {
  const child = spawn(file, args, {
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  });
  const max = opts.maxBuffer ?? 16_000_000;
  let timedOut = false;
  let overflow = false;
  let spawnError: Error | null = null;
  const collect = (stream: NodeJS.ReadableStream, path: string | undefined, onChunk?: (c: string) => void) => {
    const parts: string[] = [];
    let size = 0;
    const file = path ? createWriteStream(path) : null;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      file?.write(chunk);
      onChunk?.(chunk);
      if (overflow) return;
      if (size + chunk.length > max) {
        // keep what fits, as evidence of what the process was printing
        parts.push(chunk.slice(0, max - size));
        size = max;
        overflow = true;
        child.kill('SIGKILL');
        return;
      }
      size += chunk.length;
      parts.push(chunk);
    });
    const closed = new Promise<void>((resolve) => stream.on('end', resolve).on('error', () => resolve()));
    return {
      text: () => parts.join(''),
      closed: async () => {
        await closed;
        if (file) await new Promise<void>((resolve) => file.end(resolve));
      },
    };
  };
  const out = collect(child.stdout!, opts.stdoutFile, opts.onStdout);
  const err = collect(child.stderr!, opts.stderrFile, opts.onStderr);
  if (opts.input !== undefined) {
    child.stdin!.on('error', () => {}); // the child may exit without reading
    child.stdin!.end(opts.input);
  }
  let timers: NodeJS.Timeout[] = [];
  if (opts.timeoutMs !== undefined) {
    timers.push(
      setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        timers.push(setTimeout(() => child.kill('SIGKILL'), opts.killGraceMs ?? 300));
      }, opts.timeoutMs),
    );
  }
  const done = new Promise<ProcResult>((resolve) => {
    const finish = async (exitCode: number | null, signal: NodeJS.Signals | null, started = true) => {
      timers.forEach(clearTimeout);
      timers = [];
      if (started) await Promise.all([out.closed(), err.closed()]);
      resolve({ exitCode, signal, stdout: out.text(), stderr: err.text(), timedOut, overflow, spawnError });
    };
    child.once('error', (e) => {
      spawnError = e;
      if (child.pid === undefined) void finish(null, null, false);
    });
    child.once('exit', (code, signal) => void finish(code, signal));
  });
  return { pid: child.pid, done };
}

export class CommandError extends Error {
  override name = 'CommandError';
}

/** Run a short command to completion; its stdout, or a CommandError naming the command and its stderr. */
export async function runProc(file: string, args: string[], input?: string): Promise<string> {
  const r = await startProc(file, args, input === undefined ? {} : { input }).done;
  if (r.exitCode === 0) return r.stdout.replace(/\n$/, '');
  const detail = (r.spawnError?.message ?? r.stderr.trim()) || `exit code ${r.exitCode ?? r.signal}`;
  throw new CommandError(`${file} ${args.join(' ')}: ${detail.split('\n').slice(0, 3).join(' | ')}`, { cause: r.spawnError ?? undefined });
}
