// args: what every command shares on its command line.
import test from 'ava';
import { closest, didYouMean, fromUser, PACKAGE_DIR, swallowedByNpm, userDir, wholeNumber } from '../../harness/args.ts';

test('a misspelling finds the names it is close to, nearest first; nothing for a stranger', (t) => {
  const known = ['symmetric-vs-cone', 'cone-vs-cone', 'full-matrix', 'tcp-matrix'];
  t.deepEqual(closest('symetric-vs-cone', known), ['symmetric-vs-cone']);
  t.deepEqual(closest('ful-matrix', known), ['full-matrix']);
  t.deepEqual(closest('matrix', known), ['tcp-matrix', 'full-matrix'], 'names it ends, the nearer first');
  t.deepEqual(closest('fulll-cnoe', ['full-cone', 'symmetric']), ['full-cone'], 'a doubled letter and a swap');
  t.deepEqual(closest('banana', known), []);
  t.is(didYouMean('ful-matrix', known), ' (did you mean "full-matrix"?)');
  t.is(didYouMean('banana', known), '');
});

test('options npm took for itself are found only under npm run, and only when set', (t) => {
  const env = { npm_lifecycle_event: 'scenario', npm_config_dry_run: 'true', npm_config_json: '', npm_config_tries: 'true' };
  t.deepEqual(swallowedByNpm('scenario', ['dry-run', 'json', 'tries', 'out'], env), ['dry-run', 'tries']);
  t.deepEqual(swallowedByNpm('scenario', ['dry-run'], { npm_config_dry_run: 'true' }), [], 'not under npm run: a user\'s own setting');
  t.deepEqual(swallowedByNpm('scenario', ['dry-run'], { ...env, npm_lifecycle_event: 'test' }), [], 'inherited from another script (npm test)');
});

test('relative paths are the user\'s: npm\'s INIT_CWD when npm runs us in our folder, else the process\'s directory', (t) => {
  t.is(userDir({ INIT_CWD: '/home/me/project' }, PACKAGE_DIR), '/home/me/project');
  t.is(fromUser('scenarios/x.ts', { INIT_CWD: '/home/me/project' }, PACKAGE_DIR), '/home/me/project/scenarios/x.ts');
  t.is(fromUser('/abs/x.ts', { INIT_CWD: '/home/me/project' }, PACKAGE_DIR), '/abs/x.ts');
  t.is(userDir({ INIT_CWD: '/home/me/project' }, '/srv/elsewhere'), '/srv/elsewhere', 'an inherited INIT_CWD elsewhere is not ours');
  t.is(userDir({ INIT_CWD: 'relative/nonsense' }, PACKAGE_DIR), PACKAGE_DIR);
  t.is(userDir({}, '/srv/x'), '/srv/x');
});

test('whole numbers: digits only, within bounds', (t) => {
  t.is(wholeNumber('tries', '12', 1, 100), 12);
  t.is(wholeNumber('tries', undefined, 1, 100), undefined);
  for (const bad of ['0x10', ' 2 ', '1e3', '-1', '0', '101']) t.throws(() => wholeNumber('tries', bad, 1, 100), { message: /--tries must be a whole number from 1 to 100/ });
});
