// Agents are any executables obeying the contract in README.md. This module turns an agent file into
// the argv that starts it: TypeScript is bundled with esbuild into a plain .mjs (plain `node` starts in
// ~70 ms, `node --import tsx` in ~300 ms: that difference, paid twice per try, would be most of a run's
// CPU); .js/.mjs/.cjs run with this Node; anything else is executed as it is.
// A bundle is cached beside the list of every source file esbuild put into it, with a hash of their
// contents: it is reused only while all of them are unchanged (an import from another folder included),
// so esbuild is loaded only after an edit.
import { createHash } from 'node:crypto';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { PACKAGE_DIR } from './package.ts';
import { UsageError } from './errors.ts';

const ROOT = PACKAGE_DIR;
const CACHE = join(ROOT, 'node_modules', '.cache', 'natmatrix', 'agents');

/** sha256 over the files' paths and contents; null when one is gone. */
function contentHash(files: string[]): string | null {
  const h = createHash('sha256');
  for (const f of files) {
    try {
      h.update(f).update(readFileSync(f));
    } catch {
      return null;
    }
  }
  return h.digest('hex');
}

interface CacheEntry {
  inputs: string[];
  hash: string;
}

/** Write-then-rename: a parallel run never sees half a file. Readable by others whatever the umask:
 * confined agents run as an unprivileged user (confine.ts). */
function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  chmodSync(tmp, 0o644);
  renameSync(tmp, path);
}

async function bundle(file: string): Promise<string> {
  const dir = join(CACHE, createHash('sha256').update(file).digest('hex').slice(0, 16));
  const outfile = join(dir, `${basename(file, extname(file))}.mjs`);
  const entryFile = `${outfile}.inputs.json`;
  try {
    const entry = JSON.parse(readFileSync(entryFile, 'utf8')) as CacheEntry;
    if (existsSync(outfile) && contentHash(entry.inputs) === entry.hash) return outfile;
  } catch {
    /* no (valid) cache entry: build */
  }
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const { build } = await import('esbuild');
  let code: string;
  let inputs: string[];
  try {
    const r = await build({ entryPoints: [file], bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent', write: false, metafile: true, absWorkingDir: ROOT });
    code = r.outputFiles[0]!.text;
    inputs = Object.keys(r.metafile.inputs).map((p) => resolve(ROOT, p)).filter((p) => !p.includes('/node_modules/')).sort();
  } catch (cause) {
    throw new UsageError(`agent ${file} does not compile: ${(cause as Error).message.split('\n').slice(0, 2).join(' ')}`, { cause });
  }
  writeAtomic(outfile, code);
  const hash = contentHash(inputs);
  if (hash !== null) writeAtomic(entryFile, JSON.stringify({ inputs, hash } satisfies CacheEntry));
  return outfile;
}

export async function agentCommand(file: string): Promise<string[]> {
  if (!existsSync(file)) throw new UsageError(`agent not found: ${file}`);
  if (statSync(file).isDirectory()) throw new UsageError(`agent ${file} is a folder: give the agent's executable or its manifest`);
  const ext = extname(file);
  if (ext === '.ts' || ext === '.mts') return [process.execPath, await bundle(file)];
  if (ext === '.js' || ext === '.mjs' || ext === '.cjs') return [process.execPath, file];
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new UsageError(`agent ${file} is not executable: chmod +x it, or give a .ts/.js file`);
  }
  return [file];
}
