// The core loop end to end, as root: real namespaces, real nftables NATs, real agents.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { cell, cli, explain, FIXTURES, hostState, isRoot, namespaces, needsRoot, processesOfRun, readReport, runIdOf, tempDir } from './helpers.ts';

// The textbook 5 × 5 UDP punch matrix (reference/nat-lab.md): only SYM×SYM, SYM×PR and PR×SYM fail.
const TYPES = ['dmz', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'];
const TEXTBOOK_FAILS = new Set(['symmetric|symmetric', 'symmetric|port-restricted', 'port-restricted|symmetric']);

if (needsRoot(test)) {
  test.serial('full-matrix equals the textbook, and the host is left as it was', async (t) => {
    const before = await hostState();
    const out = tempDir('full');
    const r = await cli(['full-matrix', '--out', out, '--json']);
    t.is(r.exitCode, 0, r.stderr);
    const report = readReport(out);
    t.deepEqual(JSON.parse(r.stdout), report, '--json prints report.json on stdout');
    t.is(report.cells.length, 25);
    for (const a of TYPES) {
      for (const b of TYPES) {
        const c = cell(report, a, b);
        const fails = TEXTBOOK_FAILS.has(`${a}|${b}`);
        t.is(c.outcome, fails ? 'failed' : 'direct', `${a} × ${b}`);
        t.is(c.successes, fails ? 0 : c.tries, `${a} × ${b}: every try alike`);
        t.is(c.tries, 3);
        t.false(c.flaky);
        t.true(c.match);
        if (!fails) t.true(c.timeToDirectMs.median !== null && c.timeToDirectMs.median < 1000);
      }
    }
    // the human matrix went to stderr with --json
    t.regex(r.stderr, /25\/25 cells as expected/);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    t.regex(md, /\| \*\*symmetric\*\* \| ✅ 3\/3 direct-udp \| ✅ 3\/3 direct-udp \| ✅ 3\/3 direct-udp \| ✅ 0\/3 failed \| ✅ 0\/3 failed \|/);
    // evidence of a failed pairing: logs of both agents and the routers' state at the verdict
    const ev = join(out, cell(report, 'symmetric', 'symmetric').evidence, 'try-1');
    for (const f of ['a.stdout', 'a.stderr', 'b.stdout', 'b.stderr', 'router-a.nft', 'router-b.nft', 'router-a.conntrack', 'router-b.conntrack', 'rendezvous.log']) {
      t.true(existsSync(join(ev, f)), f);
    }
    t.regex(readFileSync(join(ev, 'rendezvous.log'), 'utf8'), /accept reg .* from a at 203\.0\.113\.\d+:\d+/, 'the rendezvous saw the NATed source');
    t.regex(readFileSync(join(ev, 'router-a.nft'), 'utf8'), /masquerade random/);
    t.regex(readFileSync(join(ev, 'a.stdout'), 'utf8'), /"ok":false/);
    const runId = runIdOf(out);
    t.deepEqual(await namespaces(`nmx-${runId}-`), []);
    t.deepEqual(processesOfRun(runId), []);
    t.deepEqual(await hostState(), before);
  });

  test.serial('symmetric-vs-cone: SYM×PR fails, the rest connect, exit 0', async (t) => {
    const out = tempDir('svc');
    const r = await cli(['symmetric-vs-cone', '--out', out, '--pcap']);
    t.is(r.exitCode, 0, explain(r, out));
    // --pcap: the failed pairing's punching is on record at both routers' WAN and LAN
    const tryDir = join(out, cell(readReport(out), 'symmetric', 'port-restricted').evidence, 'try-1');
    for (const f of ['router-a-wan.pcap', 'router-a-lan.pcap', 'router-b-wan.pcap', 'router-b-lan.pcap']) {
      t.true(statSync(join(tryDir, f)).size > 24 + 20 * 60, `${f} holds the pings`);
    }
    t.regex(r.stdout, /symmetric\s+3\/3 ✓\s+3\/3 ✓\s+0\/3 ✓/);
    const report = readReport(out);
    t.deepEqual(report.cells.map((c) => `${c.b}:${c.outcome}`), ['full-cone:direct', 'address-restricted:direct', 'port-restricted:failed']);
    t.regex(report.host.nft, /^\d+\.\d+/, 'host facts recorded');
    t.regex(report.host.kernel, /^\d+\.\d+/);
  });

  test.serial('wrong expectations are reported as mismatches with exit 1, in both directions', async (t) => {
    const before = await hostState();
    const out = tempDir('wrong');
    const r = await cli([join(FIXTURES, 'wrong-expectations.ts'), '--out', out]);
    t.is(r.exitCode, 1, r.all);
    const report = readReport(out);
    const fc = cell(report, 'symmetric', 'full-cone');
    const pr = cell(report, 'symmetric', 'port-restricted');
    const ar = cell(report, 'symmetric', 'address-restricted');
    t.deepEqual([fc.outcome, fc.expected, fc.match], ['direct', 'failed', false]);
    t.deepEqual([pr.outcome, pr.expected, pr.match], ['failed', 'direct', false]);
    t.deepEqual([ar.outcome, ar.expected, ar.match], ['direct', 'direct', true]);
    t.is(report.summary.mismatched, 2);
    t.regex(r.stdout, /2\/2 ✗ want failed/);
    t.regex(r.stdout, /0\/2 ✗ want direct/);
    t.regex(readFileSync(join(out, 'report.md'), 'utf8'), /❌ 1 of 3 pairings|❌ 2 of 3 pairings/);
    // every run folder holds every format: JUnit with a failure per mismatched cell, the page with them marked
    const junit = readFileSync(join(out, 'report.junit.xml'), 'utf8');
    t.is([...junit.matchAll(/<failure message="expected /g)].length, 2);
    t.regex(junit, /<testcase classname="natmatrix\.wrong-expectations\.[^"]*" name="symmetric × full-cone"/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    t.is([...html.matchAll(/data-match="false"/g)].length >= 2, true);
    t.notRegex(html, /(src|href)="https?:/);
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
    t.deepEqual(await hostState(), before, 'a failing run leaves the host as it found it');
  });
}

if (isRoot) {
  test.serial('rfc4787-grid: all 81 pairings of the nine behaviours match the model', async (t) => {
    const out = tempDir('grid');
    const r = await cli(['rfc4787-grid', '--tries', '1', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.is(report.cells.length, 81);
    t.is(report.summary.matched, 81);
    // the grid is not trivial: both outcomes occur
    t.true(report.cells.filter((c) => c.outcome === 'failed').length >= 20);
    t.true(report.cells.filter((c) => c.outcome === 'direct').length >= 40);
  });
}

if (isRoot) {
  test.serial('hairpin: two hosts behind one NAT connect only when it hairpins, and see public endpoints', async (t) => {
    const out = tempDir('hairpin');
    const r = await cli(['hairpin', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    for (const c of report.cells) t.is(c.outcome, c.a.endsWith(':hairpin') ? 'direct' : 'failed', c.a);
    // dnat + snat: each peer sees the other at the router's external address, not at 10.0.1.x
    const attempts = JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Array<{ a: string; outcome: string; agents: { a: { verdict: { peer?: string } | null } } }>;
    const hp = attempts.filter((x) => x.a === 'port-restricted:hairpin' && x.outcome === 'direct');
    t.true(hp.length > 0);
    for (const x of hp) t.regex(x.agents.a.verdict?.peer ?? '', /^203\.0\.113\.\d+:\d+$/);
  });
}
