// Thin wrappers over iproute2, nft and conntrack, always as argv arrays, always inside a named namespace
// of ours. Nothing here ever targets the root namespace: every call takes the namespace it acts in.
import { execa, type Options, type ResultPromise } from 'execa';

export const NS_PREFIX = 'nmx-';

export class CommandError extends Error {
  override name = 'CommandError';
}

async function run(file: string, args: string[], input?: string): Promise<string> {
  try {
    const r = await execa(file, args, { input: input ?? '', stripFinalNewline: true });
    return r.stdout;
  } catch (cause) {
    const e = cause as { stderr?: string; shortMessage?: string };
    const detail = (e.stderr || e.shortMessage || String(cause)).trim().split('\n').slice(0, 3).join(' | ');
    throw new CommandError(`${file} ${args.join(' ')}: ${detail}`, { cause });
  }
}

function assertOurs(ns: string): void {
  if (!ns.startsWith(NS_PREFIX)) throw new Error(`refusing to act on namespace "${ns}": not one of natmatrix's (${NS_PREFIX}*)`);
}

/** Run many `ip` commands in one process: inside `ns` when given (`ip -n NS -batch -`). */
export function ipBatch(lines: string[], opts: { ns?: string; force?: boolean } = {}): Promise<string> {
  const args: string[] = [];
  if (opts.ns !== undefined) {
    assertOurs(opts.ns);
    args.push('-n', opts.ns);
  }
  if (opts.force) args.push('-force');
  args.push('-batch', '-');
  return run('ip', args, lines.join('\n') + '\n');
}

/** Run a command inside a namespace and return its stdout. */
export function nsRun(ns: string, argv: string[], input?: string): Promise<string> {
  assertOurs(ns);
  return run('ip', ['netns', 'exec', ns, ...argv], input);
}

/** Start a long-running command inside a namespace. `ip netns exec` execs the command, so the returned
 * process's PID is the command itself: ending it by PID ends exactly what we started. */
export function nsSpawn<O extends Options & { reject: false }>(ns: string, argv: string[], opts: O): ResultPromise<O> {
  assertOurs(ns);
  return execa('ip', ['netns', 'exec', ns, ...argv], opts) as unknown as ResultPromise<O>;
}

export async function createNamespaces(names: string[]): Promise<void> {
  names.forEach(assertOurs);
  await ipBatch(names.map((n) => `netns add ${n}`));
}

/** Delete namespaces, ignoring ones already gone. */
export async function deleteNamespaces(names: string[]): Promise<void> {
  names.forEach(assertOurs);
  if (names.length === 0) return;
  const existing = new Set(await listNamespaces());
  const present = names.filter((n) => existing.has(n));
  if (present.length > 0) await ipBatch(present.map((n) => `netns del ${n}`), { force: true });
}

/** All network namespaces whose name starts with `prefix` (default: every natmatrix namespace). */
export async function listNamespaces(prefix = NS_PREFIX): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/** PIDs of processes whose network namespace is `ns`. */
export async function namespacePids(ns: string): Promise<number[]> {
  assertOurs(ns);
  const out = await run('ip', ['netns', 'pids', ns]);
  return out.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

export function sysctl(ns: string, settings: Record<string, string | number>): Promise<string> {
  return nsRun(ns, ['sysctl', '-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

/** Replace a router's ruleset (the text starts with `flush ruleset`). */
export function nftLoad(ns: string, ruleset: string): Promise<string> {
  return nsRun(ns, ['nft', '-f', '-'], ruleset);
}

export function nftList(ns: string): Promise<string> {
  return nsRun(ns, ['nft', 'list', 'ruleset']);
}

export function conntrackFlush(ns: string): Promise<string> {
  return nsRun(ns, ['conntrack', '-F']);
}

export async function conntrackList(ns: string): Promise<string> {
  // conntrack prints its entries on stdout and a count line on stderr
  return nsRun(ns, ['conntrack', '-L']);
}

/** Send `signal` to each PID, then SIGKILL whatever is still alive after `graceMs`. */
export async function endPids(pids: number[], graceMs = 500, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
  const until = Date.now() + graceMs;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
    left = left.filter(alive);
  }
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}
