// Preflight: can this machine build labs at all? And the host facts every report carries.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { startProc } from './proc.ts';
import type { HostFacts } from './types.ts';

import { EnvironmentError } from './errors.ts';
import { howTo } from './args.ts';

export { EnvironmentError };

export const REQUIRED_TOOLS: Record<string, string> = {
  ip: 'iproute2',
  nft: 'nftables',
  conntrack: 'conntrack',
  nsenter: 'util-linux',
  // agents run confined (confine.ts): their own PID and mount namespaces, then no privilege
  unshare: 'util-linux',
  setpriv: 'util-linux',
};

/**
 * System tools are looked up in the system directories only, never along PATH: under `npm run`, PATH
 * starts with node_modules/.bin, where ava's dependency @vercel/nft installs a binary named `nft`
 * (a file tracer). Run as the NAT tool, it exits 0 having loaded no rules at all.
 */
export const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];
const resolved = new Map<string, string | null>();

export function which(cmd: string, dirs: string[] = SYSTEM_DIRS): string | null {
  const hit = resolved.get(cmd);
  if (hit !== undefined && dirs === SYSTEM_DIRS) return hit;
  let found: string | null = null;
  for (const dir of dirs) {
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      found = p;
      break;
    } catch {
      /* not here */
    }
  }
  if (dirs === SYSTEM_DIRS) resolved.set(cmd, found);
  return found;
}

/** Absolute path of a system tool; an EnvironmentError naming its package when it is missing. */
export function systemTool(cmd: string): string {
  const p = which(cmd);
  if (p === null) throw new EnvironmentError(`${cmd} not found (package ${REQUIRED_TOOLS[cmd] ?? cmd}): run ${howTo().setup()}`);
  return p;
}

/** Throw one clear EnvironmentError for the first thing that stops a lab from being built. */
export function preflight(tools: Record<string, string> = REQUIRED_TOOLS): void {
  if (process.platform !== 'linux') throw new EnvironmentError(`natmatrix needs Linux network namespaces; this is ${process.platform}`);
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError(`natmatrix needs root to create network namespaces and NAT rules: run it with sudo: ${howTo().again()}`);
  }
  const missing = Object.entries(tools).filter(([cmd]) => which(cmd) === null);
  if (missing.length > 0) {
    const names = missing.map(([cmd, pkg]) => `${cmd} (package ${pkg})`).join(', ');
    throw new EnvironmentError(`missing ${names}: run ${howTo().setup()} to install what natmatrix needs`);
  }
  if (!existsSync('/proc/self/ns/net')) throw new EnvironmentError('this kernel has no network namespaces (/proc/self/ns/net is missing)');
}

async function versionOf(cmd: string, args: string[], pattern: RegExp): Promise<string> {
  const path = which(cmd);
  if (path === null) return 'missing';
  const r = await startProc(path, args).done;
  return `${r.stdout}\n${r.stderr}`.match(pattern)?.[1] ?? 'unknown';
}

export async function hostFacts(): Promise<HostFacts> {
  const [nft, iproute2, conntrack] = await Promise.all([
    versionOf('nft', ['--version'], /nftables v(\S+)/),
    versionOf('ip', ['-V'], /iproute2-(\S+?),?\s/),
    versionOf('conntrack', ['--version'], /conntrack v(\S+)/),
  ]);
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    /* not linux */
  }
  return { kernel, nft, iproute2, conntrack, node: process.versions.node, cpus: cpus().length };
}
