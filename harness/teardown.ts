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

/**
 * Unwind `teardown` when the process is asked to stop (SIGINT, SIGTERM, SIGHUP), then exit with
 * 128 + signal number, only once nothing is left: a teardown that failed exits 4 after saying what is
 * left (`runId` names it in the clean command). Returns a function that removes the handlers again.
 */
export function unwindOnSignals(teardown: Teardown, onSignal?: (signal: NodeJS.Signals) => void, runId?: string, command?: string): () => void {
  const codes: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  const handler = (signal: NodeJS.Signals) => {
    onSignal?.(signal);
    void teardown.unwind().then(
      (errors) => process.exit(errors.length ? reportLeftovers(errors, runId, command) : (codes[signal] ?? 1)),
      () => process.exit(EXIT.leftover),
    );
  };
  const signals = Object.keys(codes) as NodeJS.Signals[];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
