// The error classes that decide natmatrix's exit codes, in one place. Anything the user can fix (a
// bad option, a malformed scenario or manifest, a missing tool, not root) is exit 2 with one line; a
// failure of the run itself is exit 3; a teardown that could not remove everything is exit 4 (it says what
// is left and how to remove it), whatever the run's own outcome or the signal that ended it. A
// comparison of two runs (`natmatrix compare`) that finds a significant regression is exit 5.

/** Exit codes of every natmatrix command. */
export const EXIT = { ok: 0, mismatch: 1, usage: 2, error: 3, leftover: 4, regression: 5 } as const;

/** A problem with what the user asked for (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The environment cannot run a lab (exit code 2). */
export class EnvironmentError extends Error {
  override name = 'EnvironmentError';
}

/** The routers of a lab misbehave (--verify): no matrix is reported (exit 2). */
export class VerifyError extends Error {
  override name = 'VerifyError';
}

/** A problem of the run itself rather than of one cell: a lane that cannot be built, a capture that
 * won't start (exit 3). */
export class RunError extends Error {
  override name = 'RunError';
}

/** The teardown could not remove everything a run or lab created (exit code 4): `errors` says what
 * failed, `runId` names the run for `natmatrix clean`; a run that failed on its own carries that
 * failure as `cause`. */
export class LeftoverError extends Error {
  override name = 'LeftoverError';
  constructor(
    readonly errors: Error[],
    readonly runId: string | undefined,
    options?: ErrorOptions,
  ) {
    super(`the teardown is incomplete: ${errors.map((e) => `${e.message}: ${(e.cause as Error | undefined)?.message ?? ''}`).join('; ')}; remove what is left with: sudo natmatrix clean${runId ? ` ${runId}` : ''}`, options);
  }
}

/** The exit code for an error that ended a command: 2 for what the user can fix, 4 for leftovers,
 * 3 for anything else. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof LeftoverError) return EXIT.leftover;
  if (err instanceof UsageError || err instanceof EnvironmentError || err instanceof VerifyError) return EXIT.usage;
  return EXIT.error;
}

/** The shape of a zod issue that flattening needs (zod's own types differ between its versions). */
interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  errors?: Issue[][];
}

/**
 * One line per problem, "field.path: message". For a value that fits no branch of a union, the issues
 * of the branch of its own kind (an object for an object, a string for a string) say what is wrong with
 * it, not "Invalid input".
 */
export function issueLines(issues: readonly Issue[], prefix: PropertyKey[] = []): string[] {
  return issues.flatMap((i) => {
    const path = [...prefix, ...i.path];
    if (i.code === 'invalid_union' && i.errors?.length) {
      const fitting = i.errors.filter((branch) => !branch.some((x) => x.code === 'invalid_type' && x.path.length === 0));
      if (fitting.length === 1) return issueLines(fitting[0]!, path);
      // several object branches: the one the value got furthest into (unknown or missing keys at its
      // top say it is the wrong branch)
      const score = (branch: Issue[]) =>
        Math.max(...branch.map((x) => x.path.length)) -
        (branch.some((x) => x.code === 'unrecognized_keys' && x.path.length === 0) ? 10 : 0) -
        (branch.some((x) => x.code === 'invalid_type' && x.path.length === 1 && /received undefined/.test(x.message)) ? 5 : 0);
      const ranked = [...fitting].sort((x, y) => score(y) - score(x));
      if (ranked.length > 1 && score(ranked[0]!) > score(ranked[1]!)) return issueLines(ranked[0]!, path);
    }
    return [`${path.length ? path.map(String).join('.') : '(top level)'}: ${i.message}`];
  });
}
