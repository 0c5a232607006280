// The README's library examples are the files CI runs as a user's tests (test/examples/, run by
// test/integration/package.test.ts): the text in the README must be those files, byte for byte.
import { readFileSync } from 'node:fs';
import test from 'ava';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');

for (const file of ['test/examples/nat.ava.ts', 'test/examples/nat.node.ts', 'test/examples/agent.ts']) {
  test(`the README shows ${file} as it is`, (t) => {
    const text = readFileSync(new URL(file, root), 'utf8');
    t.true(text.length > 200);
    t.true(readme.includes('```ts\n' + text + '```'), `README.md does not hold ${file} verbatim: copy it into its README section`);
  });
}

test('the library\'s public exports are the ones the README documents', async (t) => {
  const api = await import('../../harness/index.ts');
  for (const name of ['runScenario', 'defineScenario', 'buildLab', 'prepareRun', 'UsageError', 'EnvironmentError', 'VerifyError', 'RunError', 'LeftoverError', 'EXIT', 'NAT_TYPES', 'findNat', 'VERSION']) {
    t.true(name in api, `${name} is exported`);
    t.true(readme.includes(`\`${name}`), `${name} is in the README`);
  }
});
