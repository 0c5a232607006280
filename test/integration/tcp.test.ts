// TCP through the NAT templates' TCP handling (agents/tcp-punch: listen one way, the other, then a
// simultaneous open): the textbook 5 × 5 over TCP. Endpoint-independent filters let the SYN reach a
// listener, the restricted cones meet in a simultaneous open, and a symmetric NAT connects only with a
// full cone or DMZ — no peer-reflexive rescue in TCP.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Attempt } from '../../harness/types.ts';
import { cell, cli, explain, namespaces, needsRoot, readReport, runIdOf, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('tcp-matrix: the 5 × 5 over TCP, each pairing connecting in the phase its NATs allow', async (t) => {
    const out = tempDir('tcp');
    const r = await cli(['tcp-matrix', '--tries', '2', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.is(report.summary.matched, 25);
    t.deepEqual([cell(report, 'port-restricted', 'port-restricted').successes, cell(report, 'port-restricted', 'port-restricted').tries], [2, 2]);
    t.is(cell(report, 'address-restricted', 'symmetric').outcome, 'failed');
    t.is(cell(report, 'symmetric', 'full-cone').path, 'direct-tcp');
    t.regex(cell(report, 'symmetric', 'port-restricted').reasons.join('\n'), /no TCP connection to 203\.0\.113\.\d+:\d+ within 1500 ms \(b listens, a connects, a listens, b connects, simultaneous open;/);
    const attempts = JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Attempt[];
    const direct = attempts.filter((a) => a.outcome === 'direct');
    t.is(direct.length, 20 * 2);
    t.true(direct.every((a) => a.path === 'direct-tcp'), 'the verdicts name the TCP path');
    // which phase connected: through b's listener when b filters endpoint-independently, else the other
    // way round, else the simultaneous open
    const how = (a: string, b: string) => {
      const att = attempts.find((x) => x.a === a && x.b === b && x.outcome === 'direct')!;
      return (JSON.parse(readFileSync(join(out, att.agents.a.stdout), 'utf8').trim()) as { how: string }).how;
    };
    t.is(how('symmetric', 'full-cone'), 'b listens, a connects');
    t.is(how('dmz', 'symmetric'), 'a listens, b connects');
    t.is(how('address-restricted', 'port-restricted'), 'simultaneous open');
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
  });
}
