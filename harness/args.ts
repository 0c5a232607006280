// What every natmatrix command shares on its command line: the user's directory (relative paths are
// theirs, not natmatrix's folder: npm runs scripts in the package's folder and says where it was
// called from in INIT_CWD), --help and --version, whole numbers, "did you mean", and the options npm
// swallows when they come before `--`.
import { appendFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
type ParsedResults<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>>;
import { EXIT, exitCodeOf, UsageError } from './errors.ts';

import { PACKAGE_DIR, VERSION } from './package.ts';

export { PACKAGE_DIR, VERSION } from './package.ts';

/**
 * The directory the user ran the command in: npm runs natmatrix's scripts in natmatrix's folder and
 * says where it was called from in INIT_CWD; anywhere else (the natmatrix command run in a project,
 * even by a process that inherited some INIT_CWD) it is the process's own directory.
 */
export function userDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const init = env.INIT_CWD;
  return init && isAbsolute(init) && cwd.replace(/\/$/, '') === PACKAGE_DIR ? init : cwd;
}

/** A path the user typed, absolute: relative ones resolve from the user's directory. */
export const fromUser = (path: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string => resolve(userDir(env, cwd), path);

/** A whole number in decimal digits only (no "0x10", " 2 ", "1e3"), within [min, max]. */
export function wholeNumber(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not "${value}"`);
  return n;
}

/** Edit distance (insertions, deletions, substitutions, and swaps of neighbours). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known names closest to a misspelled one: within a quarter of its length in edits (at least 1,
 * at most 3), or that it starts or ends; the nearest first, at most three.
 */
export function closest(word: string, known: readonly string[]): string[] {
  const w = word.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 4)));
  return known
    .map((k) => ({ k, d: distance(w, k.toLowerCase()) }))
    .filter(({ k, d }) => d <= limit || (w.length >= 3 && (k.startsWith(w) || k.endsWith(w))))
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, 3)
    .map(({ k }) => k);
}

/** ` (did you mean "x"?)`, or '' when nothing is close. */
export function didYouMean(word: string, known: readonly string[]): string {
  const c = closest(word, known);
  return c.length ? ` (did you mean ${c.map((x) => `"${x}"`).join(' or ')}?)` : '';
}

/**
 * Options npm took for itself: given before `--` to `npm run`, `--dry-run` or `--json` become npm's
 * own settings (npm_config_dry_run=true, …) and the command never sees them, while a value such as
 * `--tries 3` leaves a stray "3". Refused with the fix rather than run without them. Only when npm
 * runs this very script (`npm run <script>`): a process that merely inherited npm's environment (a
 * test run by `npm test`) is not judged by it.
 */
export function swallowedByNpm(script: string, options: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.npm_lifecycle_event !== script) return [];
  return options.filter((o) => {
    const v = env[`npm_config_${o.replace(/-/g, '_')}`];
    return v !== undefined && v !== '';
  });
}

export function refuseSwallowed(command: string, options: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const lost = swallowedByNpm(command, options, env);
  if (lost.length === 0) return;
  const flags = lost.map((o) => `--${o}`).join(' ');
  throw new UsageError(`npm took ${flags} for itself (options before \`--\` are npm's): write \`npm run ${command} -- … ${flags}\`, or run the natmatrix command itself`);
}

const STANDARD_OPTIONS = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } } as const;

/**
 * parseArgs for a natmatrix command: its options plus --help/-h and --version, which are answered here
 * (null: the command has nothing more to do); a bad option is a one-line UsageError, like every other.
 */
export function parseCommandLine<const O extends OptionsConfig, const P extends boolean = false>(config: {
  options: O;
  help: string;
  args?: string[];
  allowPositionals?: P;
}): ParsedResults<{ options: O & typeof STANDARD_OPTIONS; allowPositionals: P; args: string[] }> | null {
  let parsed;
  try {
    parsed = parseArgs({ args: config.args ?? process.argv.slice(2), allowPositionals: config.allowPositionals ?? false, options: { ...config.options, ...STANDARD_OPTIONS } });
  } catch (cause) {
    throw new UsageError((cause as Error).message.replace(/\s*\n\s*/g, ' '), { cause });
  }
  const values = parsed.values as { help?: boolean; version?: boolean };
  if (helpOrVersion(values.help ? ['--help'] : values.version ? ['--version'] : [], config.help)) return null;
  return parsed as unknown as ParsedResults<{ options: O & typeof STANDARD_OPTIONS; allowPositionals: P; args: string[] }>;
}

/** Handle --help / -h and --version for a command that takes free arguments: true when it did. */
export function helpOrVersion(argv: readonly string[], help: string): boolean {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help.endsWith('\n') ? help : `${help}\n`);
    return true;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`natmatrix ${VERSION}\n`);
    return true;
  }
  return false;
}

/** Set by the natmatrix command (harness/natmatrix.mjs): the command as the user typed it, as words,
 * e.g. ["natmatrix", "scenario", "symmetric-vs-cone", "--tries", "1"]. */
const TYPED = Symbol.for('natmatrix.typed');

const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/**
 * How the user runs natmatrix commands, for hints: `npx natmatrix <command> …` when they came in
 * through the natmatrix command, `npm run <script> -- …` under npm in natmatrix's own folder.
 * `again()` is the very command they ran (with sudo, for "needs root"); `setup()` how to run setup.
 */
export function howTo(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv): { again: () => string; setup: () => string } {
  const typed = (globalThis as Record<symbol, unknown>)[TYPED];
  if (Array.isArray(typed)) return { again: () => `sudo npx ${typed.map(String).map(shellWord).join(' ')}`, setup: () => 'sudo npx natmatrix setup' };
  const script = env.npm_lifecycle_event;
  if (script) {
    const args = argv.slice(2).map(shellWord).join(' ');
    return { again: () => `sudo npm run ${script}${args ? ` -- ${args}` : ''}`, setup: () => 'sudo npm run setup' };
  }
  return { again: () => `sudo ${argv.map(shellWord).join(' ')}`, setup: () => 'sudo npx natmatrix setup (or sudo npm run setup in a checkout)' };
}

/**
 * End the process with `code` once stdout and stderr have handed everything written to them to the
 * kernel. process.exit() at once would cut output still queued for a pipe (a `--dry-run` or `--json`
 * piped into another program stopped at 65,536 bytes, one pipe buffer). A reader that went away
 * (EPIPE, `| head`) ends the wait too.
 */
export function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  const streams = [process.stdout, process.stderr];
  let pending = streams.length;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  for (const s of streams) {
    if (s.writableLength === 0 || s.destroyed || s.writableEnded) done();
    else s.write('', () => done());
  }
}

/** Append a job summary to the file CI gave (`--summary FILE`); a file that cannot be written is said, not fatal: the run's results stand. */
export function appendSummary(file: string, markdown: string): void {
  try {
    appendFileSync(fromUser(file), markdown + '\n');
  } catch (e) {
    process.stderr.write(`natmatrix: could not append the summary to ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
  }
}

/**
 * Run a small command's main to its exit code: a closed stdout (\`… | head\`) is not an error, a
 * UsageError is one line \`natmatrix: …\` (exit 2), anything else the stack with the command's name.
 */
export function runCommand(name: string, main: (argv: string[]) => Promise<number>): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  main(process.argv.slice(2)).then(
    (code) => exitWhenFlushed(code),
    (e: unknown) => {
      const code = exitCodeOf(e);
      const err = e as Error;
      process.stderr.write(code === EXIT.usage ? `natmatrix: ${err.message}\n` : `natmatrix ${name} failed: ${err?.stack ?? String(err)}\n`);
      exitWhenFlushed(code);
    },
  );
}
