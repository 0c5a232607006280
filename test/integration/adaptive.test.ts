// Adaptive tries on real NATs: the cell that matches keeps getting tries until its interval is narrow
// enough; the two whose expectations are wrong stop after the first round (a miss cannot be mended).
import { join } from 'node:path';
import test from 'ava';
import { cli, explain, FIXTURES, needsRoot, readReport, tempDir } from './helpers.ts';

test('adaptive options refused with one line and exit 2: a width outside (0, 1), a cap without a width, a width with shards', async (t) => {
  for (const [args, message] of [
    [['--ci-width', '2'], /--ci-width is the widest 95 % interval .* not "2"/],
    [['--ci-width', 'wide'], /--ci-width .* not "wide"/],
    [['--max-tries', '30'], /--max-tries caps an adaptive run: give --ci-width W too/],
    [['--ci-width', '0.2', '--shard', '1/2'], /--ci-width decides tries from every try of a cell, which a shard does not see/],
    [['--ci-width', '0.2', '--tries', '5', '--max-tries', '3'], /--max-tries must be a whole number from the first round's 5 tries/],
  ] as const) {
    const r = await cli(['symmetric-vs-cone', ...args, '--dry-run']);
    t.is(r.exitCode, 2, `${args.join(' ')}: ${r.all}`);
    t.regex(r.stderr, message);
  }
});

if (needsRoot(test)) {
  test('--ci-width: matched cells get tries until their interval is narrow, missed ones stop after the first round', async (t) => {
    const out = join(tempDir('adaptive'), 'run');
    const r = await cli([join(FIXTURES, 'wrong-expectations.ts'), '--ci-width', '0.3', '--out', out]);
    t.is(r.exitCode, 1, explain(r, out));
    const report = readReport(out);
    const tries = Object.fromEntries(report.cells.map((c) => [c.b, [c.successes, c.tries]]));
    // address-restricted: expected direct and is; 2 → 4 → 8 → 16 (16/16 is the first under 0.3 wide)
    t.deepEqual(tries['address-restricted'], [16, 16]);
    // the two flipped expectations are settled as mismatches by the first round's 2 tries
    t.deepEqual(tries['full-cone'], [2, 2]);
    t.deepEqual(tries['port-restricted'], [0, 2]);
    t.deepEqual(report.options.adaptive, { ciWidth: 0.3, maxTries: 100, rounds: 4, stopped: { interval: 1, settled: 2, error: 0, cap: 0 } });
    t.regex(r.stdout, /adaptive \(95 % interval ≤ 0\.3, at most 100 tries a cell\): 4 rounds, 20 tries, 2–16 per cell/);
  });
}
