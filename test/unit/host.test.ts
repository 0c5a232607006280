import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { EnvironmentError, preflight, SYSTEM_DIRS, which } from '../../harness/host.ts';

const isRoot = process.getuid?.() === 0;

test('a missing tool: one line naming it, its package and the setup command', (t) => {
  const e = t.throws(() => preflight({ 'nmx-no-such-tool': 'nmx-some-package' }), { instanceOf: EnvironmentError });
  if (isRoot) t.is(e?.message, 'missing nmx-no-such-tool (package nmx-some-package): run sudo npm run setup to install what natmatrix needs');
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
