// The harness compiled, for the natmatrix command (plain JavaScript: it runs before any TypeScript
// loader). The installed package carries it in dist/ (built when the package is packed). A checkout
// builds it on first use: esbuild bundles every command and every shipped scenario at once (shared code
// split into chunks, zod included, esbuild and tsx left to node_modules) into node_modules/.cache/natmatrix/cli/<hash>/,
// and reuses the build while every source file that went into it is unchanged (their contents hashed at
// each start: a few ms), like the agents' bundles. Starting from it skips tsx, which costs about 0.4 s of
// CPU per start. Returns null when nothing compiled can be used (the caller falls back to tsx, which
// then reports any error in the sources itself).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The compiled scenarios' folder, for scenario.ts (shipped scenarios load from there). */
export const COMPILED_SCENARIOS = Symbol.for('natmatrix.compiledScenarios');

const ENTRIES = ['cli', 'classify-cli', 'clean', 'shell', 'bench', 'compare-cli', 'merge-cli'];

/** this file: how the build is made is part of what it is made from */
const SELF = readFileSync(new URL(import.meta.url));

function hashOf(root, inputs) {
  const h = createHash('sha256').update(SELF);
  for (const f of inputs) h.update(f).update('\0').update(readFileSync(join(root, f))).update('\0');
  return h.digest('hex').slice(0, 16);
}

/**
 * The compiled module of a command (`entry`: its source's name, e.g. "cli.ts") and the folder of the
 * compiled shipped scenarios, or null.
 */
export async function prebuilt(root, entry) {
  const name = entry.replace(/\.ts$/, '');
  // the installed package (no tsconfig.json: it ships sources and dist/, not its build setup); a
  // checkout never trusts a dist/ left by `npm run build`, which its next edit would make stale
  const dist = join(root, 'dist');
  if (!existsSync(join(root, 'tsconfig.json')) && existsSync(join(dist, 'harness', `${name}.js`))) return { file: join(dist, 'harness', `${name}.js`), scenarios: join(dist, 'scenarios') };
  if (!ENTRIES.includes(name) || !existsSync(join(root, 'node_modules'))) return null;
  const cache = join(root, 'node_modules', '.cache', 'natmatrix', 'cli');
  const index = join(cache, 'index.json');
  try {
    const { hash, inputs } = JSON.parse(readFileSync(index, 'utf8'));
    const dir = join(cache, hash);
    if (hashOf(root, inputs) === hash && existsSync(join(dir, 'harness', `${name}.mjs`))) return { file: join(dir, 'harness', `${name}.mjs`), scenarios: join(dir, 'scenarios') };
  } catch {
    /* no build yet, or a source changed, or a file went away: build */
  }
  try {
    const { build } = await import('esbuild');
    const scenarios = readdirSync(join(root, 'scenarios')).filter((f) => f.endsWith('.ts')).map((f) => join(root, 'scenarios', f));
    const tmp = join(cache, `.building-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    const r = await build({
      entryPoints: [...ENTRIES.map((e) => join(root, 'harness', `${e}.ts`)), ...scenarios],
      absWorkingDir: root,
      outbase: root,
      outdir: tmp,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // zod goes into the build (one file instead of its module tree: its load halves, ~150 → ~80 ms);
      // esbuild and tsx stay packages (loaded only to build an agent, or without a build)
      external: ['esbuild', 'tsx', 'tsx/*'],
      outExtension: { '.js': '.mjs' },
      chunkNames: 'chunks/[name]-[hash]',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(r.metafile.inputs).filter((f) => !f.includes('node_modules/')).map((f) => relative(root, join(root, f))).sort();
    const hash = hashOf(root, inputs);
    const dir = join(cache, hash);
    mkdirSync(cache, { recursive: true });
    try {
      renameSync(tmp, dir);
    } catch {
      // another process built the same sources at the same time: its build is as good
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, 'harness', `${name}.mjs`))) return null;
    }
    // builds of older sources go after an hour (a run that started from one may still load its chunks)
    for (const old of readdirSync(cache)) {
      if (old === hash || old.startsWith('.') || old === 'index.json') continue;
      try {
        if (Date.now() - statSync(join(cache, old)).mtimeMs > 3_600_000) rmSync(join(cache, old), { recursive: true, force: true });
      } catch {
        /* gone already */
      }
    }
    const next = join(cache, `.index-${process.pid}.json`);
    writeFileSync(next, JSON.stringify({ hash, inputs }));
    renameSync(next, index);
    return { file: join(dir, 'harness', `${name}.mjs`), scenarios: join(dir, 'scenarios') };
  } catch {
    rmSync(join(cache, `.building-${process.pid}`), { recursive: true, force: true });
    return null;
  }
}
