// Agents run confined: an agent is code under test, not code natmatrix trusts. Each agent process (a
// peer, a rendezvous, the relay) gets, inside its lab node's network namespace:
//
//   nsenter --net=<node> ─ unshare --pid --mount (--kill-child) ─ confine.sh (PID 1, root) ─ setpriv ─ agent
//                          own PID namespace and /proc            read-only /, private    uid nobody, no caps,
//                          (sees only its own tree)               /tmp and /dev/shm       no_new_privs
//
// so it cannot join another namespace (setns needs CAP_SYS_ADMIN), cannot see or signal any process of
// the harness or the host (they are not in its PID namespace), cannot write the host's files (/ is
// read-only; its /tmp is its own and vanishes with it), and its ports are ≥ 1024 anyway. An agent that
// truly needs more (raw sockets, its own nft rules) declares `"privileged": true` in its manifest or its
// scenario entry; it then runs as root in the node as before, and the report says so.
//
// confine.sh is PID 1 of the agent's namespace: it forwards SIGTERM/SIGINT/SIGHUP to the agent and, when
// the agent ends, reports on stderr what it left behind and which signal ended it. readInit() reads
// those lines back into the process result (and removes them from its text).
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { packagePath } from './package.ts';
import { UsageError } from './errors.ts';
import { systemTool } from './host.ts';
import type { ProcResult } from './proc.ts';

const CONFINE_SH = packagePath('harness', 'confine.sh');

/** The user agents run as: `nobody` from /etc/passwd (65534 when it has none). */
export const AGENT_USER = ((): { name: string; uid: number; gid: number } => {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === 'nobody' && uid && gid) return { name, uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    /* no passwd: the conventional numbers */
  }
  return { name: 'nobody', uid: 65534, gid: 65534 };
})();

/** Where files given to a confined agent appear (inside its private /tmp). */
export const GIVEN_DIR = '/tmp/natmatrix';

export interface Confinement {
  /** host files the agent gets a private copy of: [host path, path the agent sees (under /tmp)] */
  files: Array<[string, string]>;
  /** folders the agent runs from that the host hides from it: [what hides it, the folder] (reveals()) */
  reveal?: Array<[string, string]>;
}

/**
 * Environment variables that name a file the agent must read: each file is given to the agent (a
 * private copy under GIVEN_DIR, owned by it, mode 0400) and the variable points at the copy. Returns
 * the new environment and the files to give.
 */
export function giveFiles(env: Record<string, string>, keys: readonly string[]): { env: Record<string, string>; files: Array<[string, string]> } {
  const out = { ...env };
  const files: Array<[string, string]> = [];
  for (const k of keys) {
    const path = env[k];
    if (path === undefined || path === '') continue;
    const copy = join(GIVEN_DIR, `${k.toLowerCase()}-${basename(path)}`);
    files.push([path, copy]);
    out[k] = copy;
  }
  return { env: out, files };
}

/** The environment a confined agent starts with, over the harness's: its own user and a writable home. */
export const CONFINED_ENV = { HOME: '/tmp', USER: AGENT_USER.name, LOGNAME: AGENT_USER.name, TMPDIR: '/tmp' } as const;

/** The argv that runs `argv` confined (to be run inside the node's network namespace, as root). */
export function confinedArgv(argv: string[], c: Confinement): string[] {
  return [
    systemTool('unshare'), '--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private', '--mount-proc', '--',
    systemTool('bash'), CONFINE_SH, String(AGENT_USER.uid), String(AGENT_USER.gid),
    ...(c.reveal ?? []).flatMap(([hidden, dir]) => ['--reveal', hidden, dir]),
    ...c.files.flatMap(([src, dst]) => ['--file', src, dst]),
    '--', ...argv,
  ];
}

const INIT_LINE = /\n?\[natmatrix-init: (left behind|killed by|cannot confine the agent|agent started):? ?([^\]\n]*)\]\n?/g;

/** The init's line when the agent itself starts: a confined agent's deadline counts from here (the
 * confinement's own start-up, paid by the harness, is not the agent's time). */
export const STARTED_MARKER = '[natmatrix-init: agent started]';

/** How long the confinement may take to start an agent before its deadline starts anyway. */
export const CONFINE_START_ALLOWANCE_MS = 10_000;

/**
 * Read confine.sh's report back into a confined process's result: processes it left behind join
 * `leftover`, an agent killed by a signal is reported as killed by it (not as exit 128+n), and a failure
 * to confine is a spawn error. The init's lines are removed from stderr.
 */
export function readInit(r: ProcResult): ProcResult {
  const out: ProcResult = { ...r, leftover: [...r.leftover] };
  out.stderr = r.stderr.replace(INIT_LINE, (_line, kind: string, detail: string) => {
    if (kind === 'left behind') out.leftover.push(...detail.split(' ').filter(Boolean));
    else if (kind === 'killed by' && /^SIG[A-Z0-9]+$/.test(detail) && r.exitCode !== null && r.exitCode > 128) {
      out.signal = detail as NodeJS.Signals;
      out.exitCode = null;
    } else if (kind === 'cannot confine the agent') out.spawnError ??= new Error(`cannot confine the agent: ${detail}`);
    return '';
  });
  return out;
}

/** Mounts the agent gets private copies of: what the host has there is hidden from it. */
const PRIVATE_MOUNTS = ['/tmp', '/dev/shm'];

/**
 * What hides `dir` from the agent user: the private mount it lies in (its /tmp), or the first folder on
 * its way that other users may not enter (/root, a 0700 temporary folder); null when nothing does.
 */
export function hiddenBy(dir: string): string | null {
  const priv = PRIVATE_MOUNTS.find((m) => dir === m || dir.startsWith(`${m}/`));
  if (priv) return priv;
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const up = '/' + parts.slice(0, i).join('/');
    if (!othersMay(statSync(up), constants.S_IXOTH)) return up;
  }
  return null;
}

/** The folder a path stands for: itself when it is a folder, else the folder holding it. */
const folderOf = (path: string): string => (statSync(path).isDirectory() ? path : path.slice(0, path.lastIndexOf('/')) || '/');

/**
 * Why the agent user cannot use `file` once its folder is shown to it (the folder itself closed, the
 * file not readable, an executable not executable by others), or null when it can.
 */
export function unusable(file: string, executed: boolean): string | null {
  const dir = folderOf(file);
  const d = statSync(dir);
  if (!othersMay(d, constants.S_IXOTH)) return `${dir} is closed to other users (mode ${(d.mode & 0o777).toString(8)})`;
  const st = statSync(file);
  if (!othersMay(st, constants.S_IROTH)) return `${file} is not readable by other users (mode ${(st.mode & 0o777).toString(8)})`;
  if (executed && !st.isDirectory() && !othersMay(st, constants.S_IXOTH)) return `${file} is not executable by other users (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
}

function othersMay(st: { mode: number; uid: number; gid: number }, bit: number): boolean {
  if (st.uid === AGENT_USER.uid) return (st.mode & (bit << 6)) !== 0;
  if (st.gid === AGENT_USER.gid) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

const within = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/**
 * Prepare an unprivileged agent's confinement from its commands: every argument that is an existing
 * absolute path (the interpreter, the script, a bundle) must be usable by the agent user, and the
 * folders it lies in (or the agent's own folder `home`, when it holds them: its node_modules) are
 * shown to it where the host hides them. Returns those folders; a UsageError (one line) for a file it
 * could not use even then. The working directory agents start in (the harness's) is shown too: an
 * agent may name files relative to it (`node --import tsx agents/x/peer.ts` in a wrapper).
 */
export function reveals(agent: string, argvs: string[][], home?: string, cwd = process.cwd()): Array<[string, string]> {
  const dirs = new Set<string>([cwd]);
  for (const argv of argvs) {
    argv.forEach((arg, i) => {
      if (!arg.startsWith('/')) return;
      try {
        accessSync(arg, constants.F_OK);
      } catch {
        return;
      }
      const why = unusable(arg, i === 0);
      if (why) {
        throw new UsageError(
          `agent ${agent} runs as the unprivileged user ${AGENT_USER.name}, which cannot use ${arg}: ${why}; ` +
            `open it to other users (chmod o+rX), or declare "privileged": true for the agent`,
        );
      }
      const dir = folderOf(arg);
      dirs.add(home && within(dir, home) ? home : dir);
    });
  }
  const hidden: Array<[string, string]> = [];
  for (const dir of [...dirs].sort()) {
    if (hidden.some(([, d]) => within(dir, d))) continue; // shown with a folder above it
    const by = hiddenBy(dir);
    if (by) hidden.push([by, dir]);
  }
  return hidden;
}
