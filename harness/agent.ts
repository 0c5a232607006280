// Agents are any executables obeying the contract in README.md. This module turns an agent file into
// the argv that starts it: TypeScript is bundled with esbuild into a plain .mjs (plain `node` starts in
// ~70 ms, `node --import tsx` in ~300 ms: that difference, paid twice per try, would be most of a run's
// CPU); .js/.mjs/.cjs run with this Node; anything else is executed as it is.
// Bundles are cached by the content of the agent's folder, so esbuild is loaded only after an edit.
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { ROOT, UsageError } from './scenario.ts';

const CACHE = join(ROOT, 'node_modules', '.cache', 'natmatrix', 'agents');

const AGENTS_DIR = join(ROOT, 'agents');

/** Hash of every source file a bundle of the agent can include: the whole agents/ tree for shipped
 * agents (they share agents/udp-punch/protocol.ts), the agent's own folder for any other. */
function sourceHash(file: string): string {
  const h = createHash('sha256').update(file);
  const walk = (dir: string, deep: boolean) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory() && deep) walk(p, deep);
      else if (e.isFile() && /\.(m?ts|m?js|json)$/.test(e.name)) h.update(p).update(readFileSync(p));
    }
  };
  const inAgents = file.startsWith(AGENTS_DIR + '/');
  walk(inAgents ? AGENTS_DIR : dirname(file), inAgents);
  return h.digest('hex').slice(0, 16);
}

async function bundle(file: string): Promise<string> {
  const outfile = join(CACHE, sourceHash(file), `${basename(file, extname(file))}.mjs`);
  if (existsSync(outfile)) return outfile;
  mkdirSync(dirname(outfile), { recursive: true });
  const { build } = await import('esbuild');
  let code: string;
  try {
    const r = await build({ entryPoints: [file], bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent', write: false });
    code = r.outputFiles[0]!.text;
  } catch (cause) {
    throw new UsageError(`agent ${file} does not compile: ${(cause as Error).message.split('\n').slice(0, 2).join(' ')}`, { cause });
  }
  // write-then-rename: a parallel run never sees half a bundle
  const tmp = `${outfile}.${process.pid}.tmp`;
  writeFileSync(tmp, code);
  renameSync(tmp, outfile);
  return outfile;
}

export async function agentCommand(file: string): Promise<string[]> {
  if (!existsSync(file)) throw new UsageError(`agent not found: ${file}`);
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

export interface AgentCommands {
  peer: string[];
  rendezvous: string[];
  /** the TLS relay, for scenarios that ask for one */
  relay?: string[];
}

/** The relay natmatrix runs beside the rendezvous when a scenario says `relay: true`. */
export const RELAY_AGENT = join(AGENTS_DIR, 'relay', 'relay.ts');

/** The agents' command lines, checked (and bundled) before anything is built. */
export async function agentCommands(agent: { peer: string; rendezvous: string }, withRelay = false): Promise<AgentCommands> {
  const [peer, rendezvous, relay] = await Promise.all([
    agentCommand(agent.peer),
    agentCommand(agent.rendezvous),
    ...(withRelay ? [agentCommand(RELAY_AGENT)] : []),
  ]);
  return { peer, rendezvous, ...(relay ? { relay } : {}) };
}
