// One seam per concern (issue 12, part 5): what each entry point really loads, from esbuild's own
// module graph (a bundle's metafile), not from reading import lines. classify and the library's lab
// layer use the lab, router, supervision and agent seams, never the lane scheduler (run.ts) or the run
// lifecycle (session.ts); the agent SDK loads nothing but Node's built-ins.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../', import.meta.url));

async function graph(entry: string): Promise<{ files: string[]; packages: string[] }> {
  const r = await build({ entryPoints: [root + entry], bundle: true, platform: 'node', format: 'esm', write: false, metafile: true, logLevel: 'silent', packages: 'external', absWorkingDir: root });
  const files = Object.keys(r.metafile.inputs);
  const packages = [...new Set(Object.values(r.metafile.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path)))];
  return { files, packages };
}

for (const entry of ['harness/classify.ts', 'harness/classify-cli.ts', 'harness/testlab.ts']) {
  test(`${entry} does not load the lane scheduler or the run lifecycle`, async (t) => {
    const { files } = await graph(entry);
    t.true(files.includes('harness/supervise.ts') && files.includes('harness/router.ts'), files.join(', '));
    t.false(files.includes('harness/run.ts'), `${entry} loads harness/run.ts`);
    t.false(files.includes('harness/session.ts'), `${entry} loads harness/session.ts`);
  });
}

test('the scenario command loads the scheduler only through the run lifecycle', async (t) => {
  const { files } = await graph('harness/cli.ts');
  t.true(files.includes('harness/session.ts'));
  t.true(files.includes('harness/run.ts'));
});

test('natmatrix/agent (agents/sdk) loads only Node built-ins', async (t) => {
  const { files, packages } = await graph('agents/sdk/index.ts');
  t.true(files.every((f) => f.startsWith('agents/sdk/')), files.join(', '));
  t.true(packages.length > 0 && packages.every((p) => p.startsWith('node:')), packages.join(', '));
});
