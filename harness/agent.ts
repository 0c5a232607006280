// Agents are any executables obeying the contract in README.md. This module turns an agent file into
// the argv that starts it: TypeScript is bundled once per run with esbuild into a plain .mjs (plain
// `node` starts in ~70 ms, `node --import tsx` in ~210 ms: that difference, paid twice per try, is most
// of a run's CPU); .js/.mjs/.cjs run with this Node; anything else is executed as it is.
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { build } from 'esbuild';
import { UsageError } from './scenario.ts';

export async function agentCommand(file: string, bundleDir: string): Promise<string[]> {
  if (!existsSync(file)) throw new UsageError(`agent not found: ${file}`);
  const ext = extname(file);
  if (ext === '.ts' || ext === '.mts') {
    mkdirSync(bundleDir, { recursive: true });
    const outfile = join(bundleDir, `${basename(file, ext)}.mjs`);
    try {
      await build({
        entryPoints: [file],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        logLevel: 'silent',
      });
    } catch (cause) {
      throw new UsageError(`agent ${file} does not compile: ${(cause as Error).message.split('\n').slice(0, 2).join(' ')}`, { cause });
    }
    return [process.execPath, outfile];
  }
  if (ext === '.js' || ext === '.mjs' || ext === '.cjs') return [process.execPath, file];
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new UsageError(`agent ${file} is not executable: chmod +x it, or give a .ts/.js file`);
  }
  return [file];
}
