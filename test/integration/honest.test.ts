// Honest verdicts: lanes cannot reach each other on the internet bridge (dropped and counted), and a
// verdict naming a peer its partner cannot be is an error, never a connection.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { buildTopology } from '../../harness/lab.ts';
import { inNs } from '../../harness/netns.ts';
import { runProc } from '../../harness/proc.ts';
import { topologyPlan } from '../../harness/plan.ts';
import { Teardown } from '../../harness/teardown.ts';
import { cell, cli, needsRoot, processesOfRun, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

/** From inside `ns`, a TCP connect to ip:9 (nothing listens): "refused" proves the packets got there and
 * back, "dropped" that they did not (no answer within 1 s). */
async function reach(ns: string, ip: string): Promise<string> {
  const probe = `require('net').connect(9, '${ip}').on('error', (e) => { console.log(e.code === 'ECONNREFUSED' ? 'refused' : e.code); process.exit(0); }).on('connect', () => { console.log('connected'); process.exit(0); }); setTimeout(() => { console.log('dropped'); process.exit(0); }, 1000);`;
  const [nsenter, ...args] = inNs(ns);
  return runProc(nsenter!, [...args, process.execPath, '-e', probe]);
}

if (needsRoot(test)) {
  test('lanes reach their partner and the public node, never another lane; what crosses is dropped and counted', async (t) => {
    const p = topologyPlan('isolation', 2);
    const teardown = new Teardown();
    t.teardown(() => teardown.unwind().then(() => {}));
    const lab = await buildTopology(p, teardown);
    await Promise.all([lab.laneReady(0), lab.laneReady(1)]);
    t.true(lab.isolated, 'this kernel has the nft bridge family');
    const [l0, l1] = p.lanes;
    t.is(await reach(l0!.a.router, l0!.b.wanIp), 'refused', 'the lane partner is reachable');
    t.is(await reach(l0!.a.router, p.rendezvous.ip), 'refused', 'the public node is reachable');
    t.is(await reach(l0!.a.router, l1!.a.wanIp), 'dropped', 'another lane is not');
    t.is(await reach(l1!.b.router, l0!.b.wanIp), 'dropped', 'nor the other way');
    const drops = (await lab.bridgeDrops()).crossLane;
    t.true((drops[0] ?? 0) > 0, JSON.stringify(drops));
    t.true((drops[1] ?? 0) > 0, JSON.stringify(drops));
    // the internet's depth: a datagram whose TTL is meant to open only its own NAT dies on the bridge
    const send = (ttl: number) => {
      const js = `const s = require('dgram').createSocket('udp4'); s.bind(() => { s.setTTL(${ttl}); let n = 0; const go = () => s.send('x', 9, '${l0!.b.wanIp}', () => (++n < 3 ? go() : s.close())); go(); });`;
      const [nsenter, ...args] = inNs(l0!.a.router);
      return runProc(nsenter!, [...args, process.execPath, '-e', js]);
    };
    t.is(p.internetHops, 8);
    await send(64);
    t.is((await lab.bridgeDrops()).lowTtl, 0);
    await send(5);
    t.is((await lab.bridgeDrops()).lowTtl, 3);
  });

  test('an agent that claims a peer its partner cannot be is an error naming it, not a connection', async (t) => {
    const file = join(tempDir('liar'), 'liar.json');
    writeFileSync(file, JSON.stringify({
      name: 'liar', description: 'a peer that names an address no partner has', a: ['full-cone'], b: ['full-cone'], tries: 1, timeoutMs: 300,
      agent: { peer: join(ROOT, 'test/fixtures/agents/liar.mjs'), rendezvous: join(ROOT, 'agents/udp-punch/rendezvous.ts') },
      expect: { 'full-cone': { 'full-cone': 'direct' } },
    }));
    const out = tempDir('liar-run');
    const r = await cli([file, '--out', out]);
    t.is(r.exitCode, 3, r.all);
    const c = cell(readReport(out), 'full-cone', 'full-cone');
    t.is(c.outcome, 'error');
    t.is(c.successes, 0);
    t.regex(c.reasons[0] ?? '', /^agent a says it connected to 198\.51\.100\.99:1, which is not its partner: b is seen as 203\.0\.113\.21; agent b says it connected to 198\.51\.100\.99:1/);
    t.deepEqual(processesOfRun(runIdOf(out)), []);
  });
}
