import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { howTo } from '../../harness/args.ts';
import { EnvironmentError, preflight, SYSTEM_DIRS, which } from '../../harness/host.ts';

const isRoot = process.getuid?.() === 0;

test('a missing tool: one line naming it, its package and the setup command', (t) => {
  const e = t.throws(() => preflight({ 'nmx-no-such-tool': 'nmx-some-package' }), { instanceOf: EnvironmentError });
  if (isRoot) t.regex(e?.message ?? '', /^missing nmx-no-such-tool \(package nmx-some-package\): run sudo (npm run setup|npx natmatrix setup.*) to install what natmatrix needs$/);
  else t.regex(e?.message ?? '', /needs root .* run it with sudo/);
});

test('system tools are found in the system directories, never along PATH', (t) => {
  // under `npm run`, node_modules/.bin/nft (a file tracer) comes first on PATH: it must never be used
  const dir = mkdtempSync(join(tmpdir(), 'natmatrix-path-'));
  const fake = join(dir, 'nft');
  writeFileSync(fake, '#!/bin/sh\nexit 0\n');
  chmodSync(fake, 0o755);
  const saved = process.env.PATH;
  process.env.PATH = `${dir}:${saved}`;
  try {
    const found = which('nft');
    t.not(found, fake);
    if (found !== null) t.true(SYSTEM_DIRS.some((d) => found.startsWith(d + '/')));
    t.is(which('nft', [dir]), fake, 'an explicit directory list is honoured');
  } finally {
    process.env.PATH = saved;
  }
});

test('hints name the command the way the user ran it: the natmatrix command, an npm script, or node', (t) => {
  const key = Symbol.for('natmatrix.typed');
  const g = globalThis as Record<symbol, unknown>;
  const before = g[key];
  try {
    delete g[key];
    const npm = howTo({ npm_lifecycle_event: 'scenario' }, ['node', 'harness/cli.ts', 'symmetric-vs-cone', '--out', 'my runs']);
    t.is(npm.again(), "sudo npm run scenario -- symmetric-vs-cone --out 'my runs'");
    t.is(npm.setup(), 'sudo npm run setup');
    const plain = howTo({}, ['/usr/bin/node', 'harness/cli.ts', 'dmz']);
    t.is(plain.again(), 'sudo /usr/bin/node harness/cli.ts dmz');
    g[key] = ['natmatrix', 'classify', 'symmetric', 'a b'];
    const bin = howTo({ npm_lifecycle_event: 'test' }, ['node', 'x']);
    t.is(bin.again(), "sudo npx natmatrix classify symmetric 'a b'");
    t.is(bin.setup(), 'sudo npx natmatrix setup');
  } finally {
    if (before === undefined) delete g[key];
    else g[key] = before;
  }
});
