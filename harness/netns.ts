// Thin wrappers over iproute2, nft and conntrack, always as argv arrays, always inside a named namespace
// of ours. Nothing here ever targets the root namespace: every call takes the namespace it acts in.
import { readlinkSync, statSync } from 'node:fs';
import { systemTool } from './host.ts';
import { CommandError, isRunning, procPids, procStat, runProc, startProc, type Proc, type ProcOptions } from './proc.ts';

export { CommandError };
export const NS_PREFIX = 'nmx-';

/** Run a system tool (looked up in the system directories, never along PATH). */
const run = (cmd: string, args: string[], input?: string, signal?: AbortSignal) => runProc(systemTool(cmd), args, input, signal);

function assertOurs(ns: string): void {
  if (!ns.startsWith(NS_PREFIX)) throw new Error(`refusing to act on namespace "${ns}": not one of natmatrix's (${NS_PREFIX}*)`);
}

/** Run many `ip` commands in one process: inside `ns` when given (`ip -n NS -batch -`). With `signal`,
 * an abort kills it mid-batch (and one not yet started never starts). */
export function ipBatch(lines: string[], opts: { ns?: string; force?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  const args: string[] = [];
  if (opts.ns !== undefined) {
    assertOurs(opts.ns);
    args.push('-n', opts.ns);
  }
  if (opts.force) args.push('-force');
  args.push('-batch', '-');
  return run('ip', args, lines.join('\n') + '\n', opts.signal);
}

/**
 * The argv prefix that runs a command inside one of our namespaces. `nsenter --net` only joins the
 * network namespace and execs the command (half the cost of `ip netns exec`, which also sets up a mount
 * namespace and remounts /sys), so the PID we get is the command itself: ending it by PID ends exactly
 * what we started. /proc/sys/net, netlink (ip, nft, conntrack) and sockets all follow the network
 * namespace.
 */
export function inNs(ns: string): string[] {
  assertOurs(ns);
  return [systemTool('nsenter'), `--net=/run/netns/${ns}`, '--'];
}

/** Run a system tool inside a namespace and return its stdout. */
export function nsRun(ns: string, argv: string[], input?: string, signal?: AbortSignal): Promise<string> {
  const [file, ...args] = inNs(ns);
  const [cmd, ...rest] = argv;
  return runProc(file!, [...args, systemTool(cmd!), ...rest], input, signal);
}

/** Start a long-running command inside a namespace; the caller registers its PID for teardown. */
export function nsStart(ns: string, argv: string[], opts: ProcOptions): Proc {
  const [file, ...args] = inNs(ns);
  return startProc(file!, [...args, ...argv], opts);
}

/** Create namespaces in one `ip -batch`. An abort of `signal` kills the batch wherever it is: the
 * caller must then delete what it had created (deleteNamespaces lists, it does not assume). */
export async function createNamespaces(names: string[], signal?: AbortSignal): Promise<void> {
  names.forEach(assertOurs);
  await ipBatch(names.map((n) => `netns add ${n}`), signal ? { signal } : {});
}

/** End every process still inside them, then delete namespaces, ignoring ones already gone. */
export async function deleteNamespaces(names: string[]): Promise<void> {
  names.forEach(assertOurs);
  if (names.length === 0) return;
  // nothing may outlive its namespace's name: a process left inside would keep it alive, unfindable
  await sweepNamespaces(names);
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

/**
 * Every process (but this one) whose network namespace is one of `names`, by namespace, with its
 * command name: one pass over /proc comparing namespace inodes, as `ip netns pids` does, without a
 * process per namespace. Only processes natmatrix started (or their descendants) live in its namespaces.
 */
export function processesIn(names: string[], spareGroups?: ReadonlySet<number>): Map<string, Array<{ pid: number; name: string }>> {
  names.forEach(assertOurs);
  const byInode = new Map<string, string>();
  const found = new Map<string, Array<{ pid: number; name: string }>>(names.map((n) => [n, []]));
  for (const n of names) {
    try {
      byInode.set(`net:[${statSync(`/run/netns/${n}`).ino}]`, n);
    } catch {
      /* not (or no longer) there */
    }
  }
  if (byInode.size === 0) return found;
  for (const pid of procPids()) {
    if (pid === process.pid) continue;
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      continue; // gone, or a kernel thread
    }
    const ns = byInode.get(link);
    if (ns === undefined) continue;
    const stat = procStat(pid);
    if (stat && spareGroups?.has(stat.pgrp)) continue;
    found.get(ns)!.push({ pid, name: stat?.name ?? '?' });
  }
  return found;
}

/**
 * End every process left in our namespaces `names`: SIGTERM, then SIGKILL whatever is alive after
 * `graceMs`, sparing the process groups `spareGroups` (agents that serve many tries: serve.ts). Returns
 * what it found. Before a namespace is deleted this must run, or a leftover process
 * keeps the deleted namespace alive where nothing can find it any more.
 */
export async function sweepNamespaces(names: string[], graceMs = 300, spareGroups?: ReadonlySet<number>): Promise<Array<{ ns: string; pid: number; name: string }>> {
  const found = [...processesIn(names, spareGroups)].flatMap(([ns, procs]) => procs.map((p) => ({ ns, ...p })));
  if (found.length) await endPids(found.map((p) => p.pid), graceMs);
  return found;
}

export function sysctl(ns: string, settings: Record<string, string | number>, signal?: AbortSignal): Promise<string> {
  return nsRun(ns, ['sysctl', '-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)], undefined, signal);
}

/** Replace a router's ruleset (the text starts with `flush ruleset`). */
export function nftLoad(ns: string, ruleset: string, signal?: AbortSignal): Promise<string> {
  return nsRun(ns, ['nft', '-f', '-'], ruleset, signal);
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

/** Send `signal` to each PID, then SIGKILL whatever is still running after `graceMs`. */
export async function endPids(pids: number[], graceMs = 500, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
  const until = Date.now() + graceMs;
  let left = pids.filter(isRunning);
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
    left = left.filter(isRunning);
  }
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
}
