// One undo stack per run. Every acquired resource (namespace, process, ...) pushes its undo the moment
// it exists; `unwind()` runs them newest first, exactly once, on success, failure, SIGINT and SIGTERM.
import { EXIT } from './errors.ts';

export interface UndoStep {
  label: string;
  undo: () => Promise<void> | void;
}

export class Teardown implements AsyncDisposable {
  private steps: UndoStep[] = [];
  private unwinding: Promise<Error[]> | null = null;
  private finished = false;

  /**
   * Register an undo. Returns `release`, which drops the step without running it (for a resource that
   * went away by itself, such as a process that exited: its PID must not be signalled any more).
   * A step pushed while the stack is unwinding is undone at once.
   */
  push(label: string, undo: UndoStep['undo']): () => void {
    const step: UndoStep = { label, undo };
    if (this.finished) {
      void Promise.resolve().then(undo).catch(() => {});
      return () => {};
    }
    this.steps.push(step);
    return () => {
      const i = this.steps.indexOf(step);
      if (i >= 0) this.steps.splice(i, 1);
    };
  }

  /** True once unwinding has started: start nothing new. */
  get closing(): boolean {
    return this.unwinding !== null;
  }

  get size(): number {
    return this.steps.length;
  }

  /** Run every undo, newest first. Failures are collected, never stop the unwinding. Idempotent. */
  unwind(): Promise<Error[]> {
    this.unwinding ??= (async () => {
      // yield once, so `unwinding` is assigned (and `closing` true) before the first undo runs
      await Promise.resolve();
      const errors: Error[] = [];
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        try {
          await step.undo();
        } catch (cause) {
          errors.push(new Error(`teardown: ${step.label} failed`, { cause }));
        }
      }
      this.finished = true;
      return errors;
    })();
    return this.unwinding;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.unwind();
  }
}

/**
 * Say what a teardown could not undo, and how to remove it, on stderr: one line per failed step, then
 * the clean command. Returns the exit code for it.
 */
export function reportLeftovers(errors: Error[], runId: string | undefined, command = 'natmatrix'): number {
  for (const e of errors) process.stderr.write(`${command}: ${e.message}: ${(e.cause as Error | undefined)?.message ?? ''}\n`);
  process.stderr.write(`${command}: the teardown is incomplete; remove what is left with: sudo npm run clean${runId ? ` -- ${runId}` : ''}\n`);
  return EXIT.leftover;
}

/** A teardown to unwind when the process is asked to stop, with what to say about it. */
interface Guarded {
  teardown: Teardown;
  onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  runId: string | undefined;
  command: string | undefined;
}

const EXIT_ON: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
const SIGNALS = Object.keys(EXIT_ON) as NodeJS.Signals[];
/** every run (or lab) of this process that is up: one signal handler unwinds them all, then exits */
const guarded = new Set<Guarded>();
let stopping = false;

function onStopSignal(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  const all = [...guarded];
  for (const g of all) g.onSignal?.(signal);
  void Promise.all(all.map(async (g) => ({ g, errors: await g.teardown.unwind().catch((e: unknown) => [e as Error]) }))).then((results) => {
    let code = EXIT_ON[signal] ?? 1;
    for (const { g, errors } of results) if (errors.length) code = reportLeftovers(errors, g.runId, g.command);
    process.exit(code);
  });
}

/**
 * Unwind `teardown` when the process is asked to stop (SIGINT, SIGTERM, SIGHUP), then exit with
 * 128 + signal number, only once nothing is left: a teardown that failed exits 4 after saying what is
 * left (`runId` names it in the clean command). Several runs or labs of one process (tests building labs
 * side by side) share one handler: a signal unwinds every one of them before the process exits.
 * Returns a function that removes the teardown from the guard again. Await it: while a signal is
 * ending the process it never resolves, so the run's own way out (a report of a run cut short, its
 * exit code) does not race the signal's exit.
 */
export function unwindOnSignals(teardown: Teardown, onSignal?: (signal: NodeJS.Signals) => void, runId?: string, command?: string): () => Promise<void> {
  const g: Guarded = { teardown, onSignal, runId, command };
  if (guarded.size === 0) for (const s of SIGNALS) process.on(s, onStopSignal);
  guarded.add(g);
  return async () => {
    if (stopping) return new Promise<void>(() => {});
    if (!guarded.delete(g) || guarded.size > 0) return;
    for (const s of SIGNALS) process.off(s, onStopSignal);
  };
}
