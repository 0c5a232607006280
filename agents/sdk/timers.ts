// A try's timers, kept together so that the try can clear every one of them when it ends: a serving
// process (serve.ts) runs its next try in the same event loop, and a timer left behind would act in it
// (the SDK would also end the process for it: its reply says "last").

export interface TryTimers {
  /** setTimeout, remembered until it fires or is cleared */
  later(fn: () => void, ms: number): NodeJS.Timeout;
  /** setInterval, remembered until cleared */
  every(fn: () => void, ms: number): NodeJS.Timeout;
  /** clear every timer still pending */
  clearAll(): void;
}

export function tryTimers(): TryTimers {
  const pending = new Set<NodeJS.Timeout>();
  return {
    later(fn, ms) {
      const t = setTimeout(() => {
        pending.delete(t);
        fn();
      }, ms);
      pending.add(t);
      return t;
    },
    every(fn, ms) {
      const t = setInterval(fn, ms);
      pending.add(t);
      return t;
    },
    clearAll() {
      for (const t of pending) clearTimeout(t);
      pending.clear();
    },
  };
}
