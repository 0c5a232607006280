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
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.ts';
import { systemTool } from './host.ts';
import type { ProcResult } from './proc.ts';

const CONFINE_SH = fileURLToPath(new URL('./confine.sh', import.meta.url));

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
    ...c.files.flatMap(([src, dst]) => ['--file', src, dst]),
    '--', ...argv,
  ];
}

const INIT_LINE = /\n?\[natmatrix-init: (left behind|killed by|cannot confine the agent):? ([^\]\n]*)\]\n?/g;

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

/**
 * Why the agent user cannot run `file` (a directory on its way it may not enter, or the file itself it
 * may not read), or null when it can. Checked by mode bits as the kernel would for a user that owns
 * none of them and is in none of their groups.
 */
export function unreachable(file: string): string | null {
  const parts = file.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const dir = '/' + parts.slice(0, i).join('/');
    const st = statSync(dir);
    if (!othersMay(st, constants.S_IXOTH)) return `${dir} is closed to other users (mode ${(st.mode & 0o777).toString(8)})`;
  }
  const st = statSync(file);
  if (!othersMay(st, constants.S_IROTH)) return `${file} is not readable by other users (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
}

function othersMay(st: { mode: number; uid: number; gid: number }, bit: number): boolean {
  if (st.uid === AGENT_USER.uid) return (st.mode & (bit << 6)) !== 0;
  if (st.gid === AGENT_USER.gid) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

/**
 * Refuse, with one line, an unprivileged agent whose files the agent user cannot reach: every argument
 * of its argv that is an existing absolute path (the interpreter, the script, a bundle).
 */
export function checkReachable(agent: string, argv: string[]): void {
  for (const arg of argv) {
    if (!arg.startsWith('/')) continue;
    try {
      accessSync(arg, constants.F_OK);
    } catch {
      continue;
    }
    const why = unreachable(arg);
    if (why) {
      throw new UsageError(
        `agent ${agent} runs as the unprivileged user ${AGENT_USER.name}, which cannot reach ${arg}: ${why}; ` +
          `put it (or natmatrix's checkout) where other users can read, e.g. under /opt or /srv, or declare "privileged": true for it`,
      );
    }
  }
}

