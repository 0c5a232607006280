// The agent seam fits real stacks: third-party rendezvous servers (fixed roles, per lane), one-sided
// verdicts (a client/server agent), several agents in one report, a DMZ that forwards every port, the
// STUN/TURN service, manifests (and their bad input), observe-only runs and success-rate expectations.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Attempt } from '../../harness/types.ts';
import { cell, cli, explain, FIXTURES, namespaces, needsRoot, processesOfRun, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

const AGENTS = join(ROOT, 'test/fixtures/agents');

/** A scenario file from data (paths inside it absolute). */
function scenarioFile(label: string, data: Record<string, unknown>): string {
  const file = join(tempDir(`scn-${label}`), `${label}.json`);
  writeFileSync(file, JSON.stringify({ name: label, description: `seams: ${label}`, tries: 1, timeoutMs: 600, ...data }));
  return file;
}

const attemptsOf = (out: string) => JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Attempt[];

if (needsRoot(test)) {
  test.serial('a rendezvous that pairs fixed roles works with lanes in parallel, one instance per lane (and per try)', async (t) => {
    const file = scenarioFile('fixed-role', {
      a: ['full-cone', 'address-restricted', 'port-restricted'],
      b: ['full-cone', 'address-restricted'],
      tries: 2,
      agent: join(AGENTS, 'fixed-role/natmatrix-agent.json'),
    });
    for (const scope of ['lane', 'try'] as const) {
      const out = tempDir(`fixed-${scope}`);
      const r = await cli([file, '--out', out, '--jobs', '6', '--rendezvous-scope', scope]);
      t.is(r.exitCode, 0, explain(r, out));
      const report = readReport(out);
      t.is(report.agents[0]!.rendezvousScope, scope);
      t.true(report.cells.every((c) => c.outcome === 'direct' && c.successes === 2), `${scope}: ${report.cells.map((c) => `${c.a}×${c.b} ${c.outcome}`).join(', ')}`);
      t.deepEqual(report.isolation.crossLaneDrops, {}, 'nothing crossed between lanes');
      const logs = readFileSync(join(out, scope === 'lane' ? 'rendezvous-lane0.stderr.log' : `${report.cells[0]!.evidence}/try-1/rendezvous.stderr.log`), 'utf8');
      t.regex(logs, /fixed-role: pairing a 203\.0\.113\.\d+:\d+ with b 203\.0\.113\.\d+:\d+/);
      t.deepEqual(processesOfRun(runIdOf(out)), []);
    }
  });

  test.serial('a client/server agent is judged by the side that decides, and the other is ended when it has spoken', async (t) => {
    const data = { a: ['full-cone'], b: ['full-cone', 'symmetric'], tries: 2 };
    const out = tempDir('client-server');
    const r = await cli([scenarioFile('client-server', { ...data, agent: join(AGENTS, 'client-server/natmatrix-agent.json') }), '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.is(report.agents[0]!.verdict, 'a');
    for (const b of data.b) t.is(cell(report, 'full-cone', b).outcome, 'direct');
    for (const x of attemptsOf(out)) {
      t.true(x.agents.b.stopped, 'the server was ended by the harness');
      t.false(x.agents.b.timedOut);
      t.true(x.agents.b.durationMs < 5000, `the server ran ${x.agents.b.durationMs} ms, not to its deadline`);
    }
    // the same programs judged by both sides: the server never gives a verdict, so the try hangs
    const both = tempDir('client-server-both');
    const r2 = await cli([scenarioFile('client-server-both', { a: ['full-cone'], b: ['full-cone'], agent: join(AGENTS, 'client-server/server-forever.ts'), expect: { 'full-cone': { 'full-cone': 'direct' } } }), '--out', both]);
    t.is(r2.exitCode, 3, r2.all);
    t.regex(cell(readReport(both), 'full-cone', 'full-cone').reasons[0] ?? '', /agent b hung/);
  });

  test.serial('two agents in one report: a matrix each, the pairings where they differ, each one\'s time-to-direct', async (t) => {
    const out = tempDir('two-agents');
    const r = await cli([join(FIXTURES, 'two-agents.ts'), '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.deepEqual(report.agents.map((x) => x.name), ['udp', 'tcp']);
    t.is(report.cells.length, 6);
    const of = (agent: string, b: string) => report.cells.find((c) => c.agent === agent && c.a === 'symmetric' && c.b === b)!;
    t.deepEqual([of('udp', 'address-restricted').outcome, of('tcp', 'address-restricted').outcome], ['direct', 'failed']);
    t.deepEqual([of('udp', 'full-cone').path, of('tcp', 'full-cone').path], ['direct-udp', 'direct-tcp']);
    t.deepEqual(report.comparison.map((d) => `${d.a}×${d.b}`), ['symmetric×full-cone', 'symmetric×address-restricted']);
    t.is(report.agents[0]!.timeToDirect.n, 4);
    t.is(report.agents[1]!.timeToDirect.n, 2);
    t.regex(r.stdout, /agent udp \(agents\/udp-punch\/natmatrix-agent\.json\)/);
    t.regex(r.stdout, /agents differ on 2 of 3 pairings:\n {4}symmetric × full-cone: udp 2\/2 direct-udp · tcp 2\/2 direct-tcp/);
    t.regex(r.stdout, /time-to-direct:\n {4}udp: median [\d.]+ ms, p90 [\d.]+ ms, max [\d.]+ ms over 4 connected tries\n {4}tcp: /);
    t.true(readFileSync(join(out, 'report.md'), 'utf8').includes('### Where the agents differ'));
    t.regex(of('tcp', 'port-restricted').evidence, /^cells\/tcp\/symmetric-vs-port-restricted$/);
    // the same with --agent NAME=FILE, and two agents that speak one protocol agree everywhere
    const out2 = tempDir('two-agents-cli');
    const r2 = await cli(['symmetric-vs-cone', '--tries', '1', '--out', out2, '--agent', `ts=${join(ROOT, 'agents/udp-punch/natmatrix-agent.json')}`, '--agent', `py=${join(ROOT, 'agents/examples/python-udp-punch.json')}`]);
    t.is(r2.exitCode, 0, r2.all);
    t.regex(r2.stdout, /agents agree on all 3 pairings/);
  });

  test.serial('a stack on ports of its own choosing: the single-port dmz shuts it out like a port-restricted cone, dmz-host does not', async (t) => {
    const out = tempDir('dmz-host');
    const file = scenarioFile('dmz-host', {
      a: ['dmz', 'dmz-host'],
      b: ['symmetric'],
      agent: join(AGENTS, 'other-port.sh'),
      expect: { dmz: { symmetric: 'failed' }, 'dmz-host': { symmetric: 'direct' } },
    });
    const r = await cli([file, '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.deepEqual(report.cells.map((c) => `${c.a}:${c.outcome}`), ['dmz:failed', 'dmz-host:direct']);
  });

  test.serial('STUN and TURN as services: peers get NMX_STUN and TURN credentials, and STUN answers with the router\'s address', async (t) => {
    const out = tempDir('stun');
    const file = scenarioFile('stun', { a: ['full-cone'], b: ['symmetric'], services: ['turn'], agent: join(AGENTS, 'stun-probe.mjs'), observe: true });
    const r = await cli([file, '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    const topo = JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { lanes: Array<{ a: { router: { wan: string } } }> };
    const wan = topo.lanes[0]!.a.router.wan.split(' ')[1]!.split('/')[0]!;
    t.regex(attemptsOf(out)[0]!.agents.a.verdict?.reason ?? '', new RegExp(`^mapped ${wan.replace(/\./g, '\\.')}:\\d+ turn 203\\.0\\.113\\.12:3478 user natmatrix$`));
    t.true(report.options.observe);
    t.regex(readFileSync(join(out, 'turnserver.log'), 'utf8'), /Relay address to use: 203\.0\.113\.12/);
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
    t.deepEqual(processesOfRun(runIdOf(out)), [], 'turnserver ended with the run');
  });

  test.serial('observe-only runs exit 0 and success-rate expectations are judged by their interval', async (t) => {
    const observed = tempDir('observe');
    const r = await cli([join(FIXTURES, 'wrong-expectations.ts'), '--observe', '--out', observed]);
    t.is(r.exitCode, 0, r.all);
    t.regex(r.stdout, /3 cells observed \(no expectations\)/);
    t.true(readReport(observed).cells.every((c) => c.expected === null && c.match));
    const out = tempDir('rates');
    const file = scenarioFile('rates', {
      a: ['symmetric'],
      b: ['full-cone', 'port-restricted'],
      tries: 5,
      expect: { symmetric: { 'full-cone': { atLeast: 0.5 }, 'port-restricted': { atLeast: 0.5, path: 'direct-udp' } } },
    });
    const r2 = await cli([file, '--out', out]);
    t.is(r2.exitCode, 1, r2.all);
    const report = readReport(out);
    // 5 of 5: the whole interval is above 50 %; 0 of 5: the whole interval is below it
    t.deepEqual(cell(report, 'symmetric', 'full-cone').rate, { atLeast: 0.5, successes: 5, low: 0.566, high: 1, holds: true, confirmed: true });
    t.like(cell(report, 'symmetric', 'port-restricted').rate, { successes: 0, high: 0.434, holds: false });
    t.false(cell(report, 'symmetric', 'port-restricted').match);
    t.regex(r2.stdout, /✗ symmetric × port-restricted: expected ≥ 50 % direct-udp, got failed, 0\/5 \(0–43 %\)/);
  });

  test.serial('bad manifests: one line naming the field, exit 2, nothing built', async (t) => {
    const dir = tempDir('manifests');
    const cases: Array<[object, RegExp]> = [
      [{ peer: 'p.mjs', colour: 'blue' }, /malformed agent manifest .*: \(top level\): Unrecognized key: "colour"/],
      [{ peer: 'p.mjs', check: undefined, install: ['npm', 'ci'] }, /install: install needs a check command/],
      [{ peer: 'p.mjs', rendezvous: null, rendezvousScope: 'lane' }, /rendezvousScope: the agent has no rendezvous/],
      [{ peer: 'p.mjs', verdict: 'whoever' }, /verdict: Invalid option/],
      [{ peer: 'p.mjs', timing: { mode: 'budget' } }, /timing\.budgetMs: /],
      [{ peer: 'p.mjs', strategy: ['direct-udp', 'relayed'], services: ['stun'] }, /strategy: a "relayed" step needs a relay/],
    ];
    for (const [i, [manifest, why]] of cases.entries()) {
      const file = join(dir, `m${i}.json`);
      writeFileSync(file, JSON.stringify(manifest));
      const r = await cli(['symmetric-vs-cone', '--agent', file, '--out', join(dir, `out${i}`)]);
      t.is(r.exitCode, 2, r.all);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      t.regex(r.stderr, why);
    }
    const missing = await cli(['symmetric-vs-cone', '--agent', join(dir, 'nope.json')]);
    t.is(missing.exitCode, 2);
    t.regex(missing.stderr, /cannot read agent manifest .*nope\.json: not found/);
    const folder = await cli(['symmetric-vs-cone', '--agent', dir]);
    t.is(folder.exitCode, 2);
    t.regex(folder.stderr, /is a folder without a natmatrix-agent\.json/);
    t.deepEqual(await namespaces('nmx-'), await namespaces('nmx-'), 'nothing was built');
  });
}
