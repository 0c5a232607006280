// The run folder: where a run writes its reports and evidence. `--out` must name a folder (an empty string
// would be the current directory), and never an old run's: its stale evidence would mix with the new run's,
// so a folder that is not empty is refused (natmatrix deletes nothing of the user's). A folder the run
// creates is private (0700); under sudo it is handed to the invoking user at the end, so they can read
// their own results. The hand-over never follows a link out of the folder.
import { chmodSync, lchownSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './errors.ts';

const CHOOSE = 'choose an empty or new folder';

/** `--out` as given: it must name something. */
export function checkOutOption(value: string | undefined): void {
  if (value !== undefined && value.trim() === '') throw new UsageError(`--out needs a folder (an empty name would be the current directory): ${CHOOSE}`);
}

/**
 * The run folder may be new or an empty folder; a file, or a folder with anything in it (an old run's
 * reports and evidence), is refused with one line. Reads only.
 */
export function checkRunFolder(dir: string): void {
  let entries: string[];
  try {
    // the folder the user named may be a link to one: that is theirs to choose
    if (!statSync(dir).isDirectory()) throw new UsageError(`--out ${dir} is not a folder: ${CHOOSE}`);
    entries = readdirSync(dir);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // not there (new), or not reachable: creating it says why, if it cannot be made
    return;
  }
  if (entries.length > 0) {
    const shown = entries.sort().slice(0, 3).join(', ') + (entries.length > 3 ? ', …' : '');
    throw new UsageError(`--out ${dir} is not empty (${shown}): an old run's files would mix with this run's evidence; ${CHOOSE}`);
  }
}

/**
 * Create the run folder (its parents as needed, like mkdir -p) with mode 0700, or take an existing empty
 * folder as it is (its owner and mode are the user's choice). Checks again that it is empty: the folder
 * may have changed since checkRunFolder. `created` says whether the run made the folder itself.
 */
export function makeRunFolder(dir: string): { created: boolean } {
  checkRunFolder(dir);
  // one level at a time: Node 20's recursive mkdirSync loops forever under /proc
  const parts = dir.split('/').filter(Boolean);
  let created = false;
  for (let i = 1; i <= parts.length; i++) {
    const path = '/' + parts.slice(0, i).join('/');
    const last = i === parts.length;
    try {
      mkdirSync(path, last ? { mode: 0o700 } : undefined);
      if (last) created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  if (created) {
    chmodSync(dir, 0o700); // the umask may have taken bits away, never added any: this is exact
  } else {
    checkRunFolder(dir);
  }
  return { created };
}

export interface Owner {
  uid: number;
  gid: number;
}

/** The user who ran natmatrix through sudo (SUDO_UID and SUDO_GID), or null: not through sudo, or as root. */
export function invokingUser(env: NodeJS.ProcessEnv = process.env): Owner | null {
  const id = (v: string | undefined) => (v !== undefined && /^\d{1,10}$/.test(v) ? Number(v) : NaN);
  const [uid, gid] = [id(env.SUDO_UID), id(env.SUDO_GID)];
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uid === 0) return null;
  return { uid, gid };
}

export interface HandOverOptions {
  /** change the folder itself too (only when the run created it: a folder the user named stays as it was) */
  includeTop: boolean;
  /** for tests: lchown */
  lchown?: (path: string, uid: number, gid: number) => void;
}

/**
 * Give the run folder's contents (and the folder itself, with includeTop) to `owner`. Inside the folder a
 * link is changed itself (lchown), never what it points at, and never descended into; a file with more
 * than one hard link is also a file elsewhere and is left alone (`skipped`). Entries that vanish are
 * ignored; any other failure is collected (`failed`), never thrown: the rest is still handed over.
 */
export function handOver(dir: string, owner: Owner, opts: HandOverOptions): { changed: number; skipped: string[]; failed: string[] } {
  const lchown = opts.lchown ?? lchownSync;
  const skipped: string[] = [];
  const failed: string[] = [];
  let changed = 0;
  const visit = (path: string, top: boolean): void => {
    let st;
    try {
      // the top is the folder the user named (it may be a link to it); below it, links are not followed
      st = top ? statSync(path) : lstatSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failed.push(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    if (!st.isDirectory() && !st.isSymbolicLink() && st.nlink > 1) {
      skipped.push(path);
      return;
    }
    if (!top || opts.includeTop) {
      try {
        lchown(path, owner.uid, owner.gid);
        changed++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failed.push(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    if (!st.isDirectory()) return;
    let entries: string[];
    try {
      entries = readdirSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failed.push(`${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return;
    }
    for (const e of entries) visit(join(path, e), false);
  };
  visit(dir, true);
  return { changed, skipped, failed };
}

/**
 * Under sudo, as root: hand the run folder to the invoking user. Returns one line to print when something
 * could not be handed over, else null. Never throws (it runs as the last step of the teardown).
 */
export function handOverToInvokingUser(dir: string, created: boolean, env: NodeJS.ProcessEnv = process.env): string | null {
  const owner = invokingUser(env);
  if (owner === null || process.getuid?.() !== 0) return null;
  try {
    const r = handOver(dir, owner, { includeTop: created });
    const problems = [...r.failed, ...r.skipped.map((p) => `${p}: has other hard links`)];
    if (problems.length === 0) return null;
    return `could not give ${problems.length} entr${problems.length === 1 ? 'y' : 'ies'} of the run folder to uid ${owner.uid} (${problems.slice(0, 3).join('; ')}${problems.length > 3 ? '; …' : ''})`;
  } catch (e) {
    return `could not give the run folder ${dir} to uid ${owner.uid}: ${(e as Error).message}`;
  }
}
