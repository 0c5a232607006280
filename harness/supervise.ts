// Process supervision: every process natmatrix starts inside a namespace (agents, services, probes,
// captures) is the leader of its own process group, registered for teardown the moment it exists, and
// ended as a tree (proc.ts). Daemons are waited on by state (a ready line), never by time.
import { CONFINE_START_ALLOWANCE_MS, CONFINED_ENV, confinedArgv, readInit, STARTED_MARKER, type Confinement } from './confine.ts';
import { RunError } from './errors.ts';
import { nsStart } from './netns.ts';
import type { Proc, ProcOptions, ProcResult } from './proc.ts';
import type { Teardown } from './teardown.ts';

export interface Daemon {
  pid: number | undefined;
  /** end it (its whole process group): `signal`, then SIGKILL after a grace */
  stop: Proc['stop'];
  /** resolves once the daemon said it is ready; rejects with why if it exits or stays silent first */
  ready: Promise<void>;
  done: Promise<ProcResult>;
}

/** Start options, plus: run it confined (an agent, unless it declared itself privileged). */
export type TrackedOptions = ProcOptions & { confine?: Confinement | null | undefined };

/**
 * Start a process inside a namespace with its PID registered for teardown at once; the registration is
 * dropped the moment the process ends (its PID must not be signalled after that). With `confine`, it
 * runs unprivileged in PID and mount namespaces of its own (confine.ts).
 */
export function startTracked(ns: string, argv: string[], opts: TrackedOptions, teardown: Teardown, label: string): Proc {
  const { confine, ...procOpts } = opts;
  // every process is the leader of its own group: the deadline, stop() and teardown reach its whole tree
  const proc = confine
    ? nsStart(ns, confinedArgv(argv, confine), {
        ...procOpts,
        env: { ...procOpts.env, ...CONFINED_ENV },
        group: true,
        // the deadline is the agent's: it counts from when the init starts it
        deadlineFrom: { marker: STARTED_MARKER, allowanceMs: CONFINE_START_ALLOWANCE_MS },
      })
    : nsStart(ns, argv, { ...procOpts, group: true });
  const pid = proc.pid;
  const release = pid === undefined ? () => {} : teardown.push(`stop ${label} (pid ${pid} and its process group)`, () => proc.stop());
  return {
    pid,
    ...(proc.stdin ? { stdin: proc.stdin } : {}),
    stop: proc.stop,
    done: proc.done.then((r) => {
      release();
      return confine ? readInit(r) : r;
    }),
  };
}

/** A stdout line that is a JSON object with "ready": true (the contract's ready line). */
export function isReadyLine(line: string): boolean {
  try {
    return (JSON.parse(line) as { ready?: unknown }).ready === true;
  } catch {
    return false;
  }
}

/**
 * Start a long-running process inside a namespace, its PID registered for teardown at once, and wait on
 * state rather than time: `ready` resolves when `isReady` holds for what it has printed so far on the
 * watched stream (a bound socket's ready line, tcpdump's "listening on").
 */
export function startDaemon(
  ns: string,
  argv: string[],
  o: { label: string; watch: 'stdout' | 'stderr'; isReady: (printed: string) => boolean; readyTimeoutMs: number; teardown: Teardown } & Omit<TrackedOptions, 'onStdout' | 'onStderr'>,
): Daemon {
  let printed = '';
  let onReady = () => {};
  const watch = (chunk: string) => {
    printed += chunk;
    if (o.isReady(printed)) onReady();
  };
  const { pid, done, stop } = startTracked(ns, argv, { ...o, ...(o.watch === 'stdout' ? { onStdout: watch } : { onStderr: watch }) }, o.teardown, o.label);
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RunError(`${o.label} printed no ready line within ${o.readyTimeoutMs} ms`)), o.readyTimeoutMs);
    onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    void done.then((r) => {
      clearTimeout(timer);
      const how = r.spawnError ? `could not be started: ${r.spawnError.message}` : r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`;
      reject(new RunError(`${o.label} ${how}`));
    });
  });
  ready.catch(() => {});
  return { pid, ready, done, stop };
}
