// Shards (--shard i/n) and merge, as CI runs them: three shard processes at once, each its own run,
// merged by the command into the report the whole run gives.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import type { Attempt, Report } from '../../harness/types.ts';
import { cli, explain, namespaces, needsRoot, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

const merge = (args: string[]) => execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/merge-cli.ts'), ...args], { reject: false, all: true, env: { NO_COLOR: '1' } });

test('--shard out of range: one line, exit 2, nothing run', async (t) => {
  for (const [shard, message] of [['5/4', /--shard 5\/4: i must be 1 to 4/], ['0/0', /--shard 0\/0: n must be 1/], ['2', /--shard takes i\/n/], ['4/40', /only 9 tries, so at most 9 shards/]] as const) {
    const r = await cli(['symmetric-vs-cone', '--tries', '3', '--dry-run', '--shard', shard]);
    t.is(r.exitCode, 2, `${shard}: ${r.all}`);
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
});

if (needsRoot(test)) {
  test('a run split into 3 shards, run at once and merged, gives the cells of the run unsplit', async (t) => {
    const dir = tempDir('shards');
    const args = ['symmetric-vs-cone', '--tries', '3'];
    const [whole, ...parts] = await Promise.all([cli([...args, '--out', join(dir, 'whole')]), ...[1, 2, 3].map((i) => cli([...args, '--shard', `${i}/3`, '--out', join(dir, `s${i}`)]))]);
    t.is(whole.exitCode, 0, explain(whole, join(dir, 'whole')));
    parts.forEach((p, i) => t.is(p.exitCode, 0, explain(p, join(dir, `s${i + 1}`))));
    const shardReports = [1, 2, 3].map((i) => readReport(join(dir, `s${i}`)));
    t.deepEqual(shardReports.map((r) => r.shard), [1, 2, 3].map((index) => ({ index, count: 3, planned: 9 })));
    t.is(new Set([...shardReports.map((r) => r.planId), readReport(join(dir, 'whole')).planId]).size, 1, 'one plan');
    t.deepEqual(shardReports.map((r) => r.cells.reduce((n, c) => n + c.tries, 0)), [3, 3, 3]);
    t.regex(parts[0]!.stdout, /shard 1\/3: 3 of the run's 9 tries/);

    const r = await merge([join(dir, 's3'), join(dir, 's1'), join(dir, 's2'), '--out', join(dir, 'merged')]);
    t.is(r.exitCode, 0, r.all);
    t.regex(r.stdout, /merged 3 shards \(9 tries\)/);
    const merged = readReport(join(dir, 'merged'));
    const cells = (x: Report) => x.cells.map((c) => ({ agent: c.agent, a: c.a, b: c.b, expected: c.expected, outcome: c.outcome, tries: c.tries, successes: c.successes, paths: c.paths, successRate: c.successRate, match: c.match, evidence: c.evidence }));
    t.deepEqual(cells(merged), cells(readReport(join(dir, 'whole'))));
    t.deepEqual(merged.merged!.shards.map((s) => s.index), [1, 2, 3]);
    // every try's evidence is where its attempt says
    const attempts = JSON.parse(readFileSync(join(dir, 'merged', 'attempts.json'), 'utf8')) as Attempt[];
    t.is(attempts.length, 9);
    for (const a of attempts) t.notThrows(() => readFileSync(join(dir, 'merged', a.agents.a.stdout)), `${a.a} × ${a.b} try ${a.try}`);
    for (const run of ['whole', 's1', 's2', 's3']) t.deepEqual(await namespaces(`nmx-${runIdOf(join(dir, run))}`), [], run);

    // a shard missing, and the same shard twice: one line, exit 2, nothing written
    const missing = await merge([join(dir, 's1'), join(dir, 's3'), '--out', join(dir, 'm2')]);
    t.is(missing.exitCode, 2);
    t.regex(missing.stderr, /^natmatrix: shard 2 of 3 missing/);
    const twice = await merge([join(dir, 's1'), join(dir, 's2'), join(dir, 's2'), join(dir, 's3'), '--out', join(dir, 'm2')]);
    t.is(twice.exitCode, 2);
    t.regex(twice.stderr, /shard 2\/3 given twice/);
  });
}
