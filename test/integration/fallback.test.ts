// The fallback strategy (agents/fallback): UDP punch, then TCP simultaneous open, then the TLS relay.
// The fallback scenario connects every pairing and the report names the step that won each; without
// a relay the same agent leaves the hard pairings failed, and the harness says so.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Attempt } from '../../harness/types.ts';
import { cell, cli, explain, FIXTURES, namespaces, needsRoot, readReport, runIdOf, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('fallback: no failed cell; UDP, TCP and the relay each win where the NATs say', async (t) => {
    const out = tempDir('fallback');
    const r = await cli(['fallback', '--tries', '1', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.false(report.cells.some((c) => c.outcome === 'failed' || c.outcome === 'error'), 'every pairing connects');
    t.is(cell(report, 'symmetric', 'symmetric').path, 'relayed');
    t.is(cell(report, 'symmetric', 'symmetric').outcome, 'relayed');
    t.is(cell(report, 'port-restricted:no-udp', 'port-restricted').path, 'direct-tcp');
    t.is(cell(report, 'port-restricted:no-udp', 'symmetric').path, 'relayed');
    t.is(cell(report, 'symmetric', 'address-restricted').path, 'direct-udp');
    t.is(cell(report, 'port-restricted:no-udp', 'full-cone').path, 'direct-tcp', 'TCP through a listener behind the full cone');
    t.deepEqual(report.summary.paths, { 'direct-udp': 22, 'direct-tcp': 4, relayed: 4 });
    t.deepEqual(report.summary.rescued, [
      { path: 'direct-tcp', cells: 4, of: 8 },
      { path: 'relayed', cells: 4, of: 4 },
    ]);
    t.regex(r.stdout, /fallback: direct-tcp rescued 4 of 8 cells \(50 %\) · relayed rescued 4 of 4 cells \(100 %\)/);
    t.regex(readFileSync(join(out, 'report.md'), 'utf8'), /🔁 1\/1 relayed/);
    // the relayed tries really went through the relay: it spliced a session for each, over TLS
    const relayLog = readFileSync(join(out, 'relay.stderr.log'), 'utf8');
    t.true((relayLog.match(/splice/gi) ?? []).length >= 4, relayLog.slice(0, 2000));
    // each relayed verdict carries the steps that failed before it
    const attempts = JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Attempt[];
    const relayed = attempts.filter((a) => a.path === 'relayed');
    t.is(relayed.length, 4);
    const stdout = readFileSync(join(out, relayed[0]!.agents.a.stdout), 'utf8');
    t.regex(stdout, /"steps":\[\{"path":"direct-udp","ok":false.*\{"path":"direct-tcp","ok":false.*\{"path":"relayed","ok":true/);
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
  });

  test('fallback without a relay: the pairings only a relay could save are reported failed', async (t) => {
    const out = tempDir('fallback-no-relay');
    const r = await cli([join(FIXTURES, 'fallback-no-relay.ts'), '--out', out]);
    t.is(r.exitCode, 1, r.all);
    const report = readReport(out);
    const sym = cell(report, 'symmetric', 'symmetric');
    t.deepEqual([sym.outcome, sym.match, sym.path], ['failed', false, null]);
    t.regex(sym.reasons.join('\n'), /every step failed — direct-udp: no pong .*; direct-tcp: no TCP connection/);
    t.deepEqual([cell(report, 'port-restricted:no-udp', 'port-restricted').path, cell(report, 'port-restricted:no-udp', 'port-restricted').match], ['direct-tcp', true]);
    t.deepEqual(report.summary.rescued, [
      { path: 'direct-tcp', cells: 1, of: 4 },
      { path: 'relayed', cells: 0, of: 3 },
    ]);
    t.regex(r.stdout, /✗ symmetric × symmetric: expected relayed, got failed/);
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
  });
}
