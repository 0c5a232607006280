// Preflight: can this machine build labs at all? And the host facts every report carries.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { delimiter, join } from 'node:path';
import { startProc } from './proc.ts';
import type { HostFacts } from './types.ts';

/** The environment cannot run a lab (exit code 2). */
export class EnvironmentError extends Error {
  override name = 'EnvironmentError';
}

export const REQUIRED_TOOLS: Record<string, string> = {
  ip: 'iproute2',
  nft: 'nftables',
  conntrack: 'conntrack',
};

export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** Throw one clear EnvironmentError for the first thing that stops a lab from being built. */
export function preflight(tools: Record<string, string> = REQUIRED_TOOLS): void {
  if (process.platform !== 'linux') throw new EnvironmentError(`natmatrix needs Linux network namespaces; this is ${process.platform}`);
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError('natmatrix needs root to create network namespaces and NAT rules: run it with sudo (e.g. sudo npm run scenario symmetric-vs-cone)');
  }
  const missing = Object.entries(tools).filter(([cmd]) => which(cmd) === null);
  if (missing.length > 0) {
    const names = missing.map(([cmd, pkg]) => `${cmd} (package ${pkg})`).join(', ');
    throw new EnvironmentError(`missing ${names}: run sudo npm run setup to install what natmatrix needs`);
  }
  if (!existsSync('/proc/self/ns/net')) throw new EnvironmentError('this kernel has no network namespaces (/proc/self/ns/net is missing)');
}

async function versionOf(cmd: string, args: string[], pattern: RegExp): Promise<string> {
  const r = await startProc(cmd, args).done;
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
