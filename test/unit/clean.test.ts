// What `natmatrix clean` takes: a run id, or a run folder standing for its run (how a CI job removes
// only its own lab) — a folder first, even one named like a run id.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runIdOfArg } from '../../harness/clean.ts';
import { tempDir } from '../integration/helpers.ts';

test('a run id, a run folder (by its topology.json), and neither', (t) => {
  const dir = tempDir('clean');
  mkdirSync(join(dir, 'out'));
  writeFileSync(join(dir, 'out', 'topology.json'), JSON.stringify({ runId: 'k3x9qz' }));
  t.is(runIdOfArg('ab12cd'), 'ab12cd');
  t.is(runIdOfArg(join(dir, 'out')), 'k3x9qz');
  // a folder named like a run id is the folder it is (relative paths are the user's)
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    t.is(runIdOfArg('out'), 'k3x9qz');
  } finally {
    process.chdir(cwd);
  }
  t.is(runIdOfArg(join(dir, 'nope')), null);
  t.is(runIdOfArg('Not-An-Id'), null);
  writeFileSync(join(dir, 'bad.json'), '');
  mkdirSync(join(dir, 'corrupt'));
  writeFileSync(join(dir, 'corrupt', 'topology.json'), '{"runId": "../../etc"}');
  t.is(runIdOfArg(join(dir, 'corrupt')), null, 'a run id that is not one is refused');
});
