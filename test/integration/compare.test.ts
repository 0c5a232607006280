// Regression gating on real runs: a baseline of symmetric-vs-cone, then the same scenario once with one
// NAT deliberately broken (its full cone filters like a port-restricted cone: NMX_NFT_DIR with the
// endpoint-independent filter replaced) and once as it was. --baseline flags the broken cell, with
// exit 5, and nothing else; the run as it was is unchanged, exit 0.
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Comparison } from '../../harness/types.ts';
import { cli, explain, needsRoot, readReport, ROOT, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('--baseline: a real run with one NAT broken regresses exactly its cell (exit 5); the same run unbroken is unchanged (exit 0)', async (t) => {
    const dir = tempDir('baseline');
    const args = ['symmetric-vs-cone', '--tries', '4'];
    const base = await cli([...args, '--out', join(dir, 'base')]);
    t.is(base.exitCode, 0, explain(base, join(dir, 'base')));

    const nft = tempDir('broken-nft');
    for (const f of readdirSync(join(ROOT, 'nft'))) copyFileSync(join(ROOT, 'nft', f), join(nft, f));
    copyFileSync(join(ROOT, 'nft/filtering-address-and-port-dependent.nft'), join(nft, 'filtering-endpoint-independent.nft'));
    const [broken, same] = await Promise.all([
      cli([...args, '--baseline', join(dir, 'base'), '--out', join(dir, 'broken')], { NMX_NFT_DIR: nft }),
      cli([...args, '--baseline', join(dir, 'base', 'report.json'), '--out', join(dir, 'same')]),
    ]);

    t.is(broken.exitCode, 5, explain(broken, join(dir, 'broken')));
    t.regex(broken.stdout, /regressed\s+symmetric × full-cone\s+connected 4\/4 → 0\/4 \(Fisher's exact test, p = 0\.029\)/);
    const c = JSON.parse(readFileSync(join(dir, 'broken', 'compare.json'), 'utf8')) as Comparison;
    t.deepEqual(c.summary, { unchanged: 2, improved: 0, regressed: 1, notComparable: 0 });
    t.deepEqual(c.cells.filter((x) => x.change === 'regressed').map((x) => [x.a, x.b, x.measure]), [['symmetric', 'full-cone', 'connected']]);
    t.deepEqual(readReport(join(dir, 'broken')).baseline, c, 'report.json carries the comparison');
    // the mismatch is there too, but the regression is the exit code a gate reads
    t.is(readReport(join(dir, 'broken')).summary.mismatched, 1);

    t.is(same.exitCode, 0, explain(same, join(dir, 'same')));
    t.regex(same.stdout, /3 cells: 3 unchanged, 0 improved, 0 regressed, 0 not comparable/);
    t.true(existsSync(join(dir, 'same', 'compare.json')));
  });

  test('--baseline of another scenario, or unreadable: one line, exit 2, nothing built', async (t) => {
    const dir = tempDir('baseline-bad');
    const other = await cli(['symmetric-vs-cone', '--baseline', join(ROOT, 'test/fixtures/shards/whole'), '--dry-run']);
    t.is(other.exitCode, 0, 'the same scenario is accepted');
    const fm = await cli(['full-matrix', '--baseline', join(ROOT, 'test/fixtures/shards/whole'), '--out', join(dir, 'x')]);
    t.is(fm.exitCode, 2, fm.all);
    t.regex(fm.stderr, /^natmatrix: the baseline is a run of scenario symmetric-vs-cone, this is full-matrix/);
    const missing = await cli(['symmetric-vs-cone', '--baseline', join(dir, 'nope.json'), '--out', join(dir, 'y')]);
    t.is(missing.exitCode, 2);
    t.is(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    t.false(existsSync(join(dir, 'x')) || existsSync(join(dir, 'y')), 'no run folder');
  });
}
