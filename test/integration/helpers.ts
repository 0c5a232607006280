// Shared helpers for the integration tests: they run natmatrix the way a user does (a CLI process, as
// root) and inspect the host afterwards. They only read the root namespace, never change it.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import type { Report } from '../../harness/types.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURES = join(ROOT, 'test/fixtures/scenarios');
export const isRoot = process.getuid?.() === 0;

/** Start the CLI as a user would (`npm run scenario` runs exactly this command). */
export function cli(args: string[], env: Record<string, string> = {}): ResultPromise<{ reject: false; cwd: string; env: Record<string, string>; all: true }> {
  return execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/cli.ts'), ...args], {
    reject: false,
    cwd: ROOT,
    env: { NO_COLOR: '1', CI: 'true', ...env },
    all: true,
    // a test's SIGTERM means SIGTERM: execa would SIGKILL 5 s later, cutting a slow (loaded) teardown
    forceKillAfterDelay: false,
  });
}

/**
 * A failed run's story for an assertion message, most telling first: the cells that did not match or
 * errored (outcome, tries, paths, reasons) from the run's report, then the end of the CLI's output. A CI
 * log shows only the message's start, and a run's output starts with install chatter.
 */
export function explain(r: { exitCode?: number; all?: string }, out?: string): string {
  const lines = [`exit ${r.exitCode}`];
  if (out) {
    try {
      for (const c of readReport(out).cells) {
        if (c.match && c.errors === 0) continue;
        lines.push(`${c.agent} ${c.a} × ${c.b}: ${c.outcome} ${c.successes}/${c.tries} (expected ${JSON.stringify(c.expected)}) paths ${JSON.stringify(c.paths)}${c.reasons.length ? ` — ${c.reasons.join('; ')}` : ''} [${c.evidence}]`);
      }
    } catch (e) {
      lines.push(`no report: ${(e as Error).message}`);
    }
  }
  const all = r.all ?? '';
  lines.push(all.length > 4000 ? `…${all.slice(-4000)}` : all);
  return lines.join('\n');
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `natmatrix-test-${label}-`));
}

export function readReport(out: string): Report {
  return JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
}

export function runIdOf(out: string): string {
  return (JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { runId: string }).runId;
}

export function cell(report: Report, a: string, b: string) {
  const c = report.cells.find((x) => x.a === a && x.b === b);
  if (!c) throw new Error(`no cell ${a} × ${b}`);
  return c;
}

export async function namespaces(prefix = 'nmx-'): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
}

/** PIDs of live processes started for run `runId` (every agent gets NMX_RUN in its environment). */
export function processesOfRun(runId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`NMX_RUN=${runId}`)) pids.push(Number(entry));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return pids;
}

/** What a run must leave exactly as it found it in the root namespace. */
export async function hostState(): Promise<Record<string, string>> {
  const read = async (cmd: string, args: string[]) => (await execa(cmd, args, { reject: false })).stdout;
  const links = await read('ip', ['-o', 'link', 'show']);
  return {
    // link counters change all the time; names, flags and addresses must not
    links: links.split('\n').map((l) => l.replace(/\s+link\/.*$/, '')).join('\n'),
    addresses: await read('ip', ['-o', 'addr', 'show']),
    routes: await read('ip', ['route', 'show', 'table', 'all']),
    nft: await read('nft', ['list', 'ruleset']),
    sysctl: ['net/ipv4/ip_forward', 'net/ipv4/conf/all/rp_filter', 'net/ipv6/conf/all/disable_ipv6', 'net/bridge/bridge-nf-call-iptables']
      .map((k) => `${k}=${readFileSync(`/proc/sys/${k}`, 'utf8').trim()}`)
      .join('\n'),
  };
}

/** Integration tests need root; without it they fail loudly instead of skipping. */
export function needsRoot(test: (title: string, fn: (t: ExecutionContext) => void) => void): boolean {
  if (!isRoot) test('integration tests need root', (t) => t.fail('run them as root: sudo npm test'));
  return isRoot;
}
