// TCP simultaneous open through the NAT templates' TCP handling: EIM pairings connect over TCP,
// every pairing with a symmetric NAT fails (no peer-reflexive rescue without a listener).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Attempt } from '../../harness/types.ts';
import { cell, cli, namespaces, needsRoot, readReport, runIdOf, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('tcp-matrix: simultaneous open connects the cones, never a symmetric NAT', async (t) => {
    const out = tempDir('tcp');
    const r = await cli(['tcp-matrix', '--out', out]);
    t.is(r.exitCode, 0, r.all);
    const report = readReport(out);
    t.deepEqual([cell(report, 'port-restricted', 'port-restricted').successes, cell(report, 'port-restricted', 'port-restricted').tries], [3, 3]);
    t.is(cell(report, 'address-restricted', 'symmetric').outcome, 'failed');
    t.regex(cell(report, 'symmetric', 'port-restricted').reasons.join('\n'), /no TCP connection to 203\.0\.113\.\d+:\d+ within 1500 ms/);
    const attempts = JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Attempt[];
    const direct = attempts.filter((a) => a.outcome === 'direct');
    t.is(direct.length, 4 * 3);
    t.true(direct.every((a) => a.path === 'direct-tcp'), 'the verdicts name the TCP path');
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
  });
}
