// matconnect (seed 000) on its topology: cloud hosts whose public address takes inbound traffic 1:1
// but whose replies leave through a separate NAT gateway. Plain request/response and UDP punching
// fail there; two one-way streams with the 6-byte header connect.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Attempt } from '../../harness/types.ts';
import { cell, cli, explain, namespaces, needsRoot, readReport, runIdOf, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('matconnect: plain request/response fails on the cloud topology, matconnect connects', async (t) => {
    const out = tempDir('matconnect');
    const r = await cli(['matconnect', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const c = cell(readReport(out), 'cloud-eip', 'cloud-eip');
    t.deepEqual([c.outcome, c.path, c.successes, c.tries], ['direct', 'matconnect', 3, 3]);
    const attempts = JSON.parse(readFileSync(join(out, 'attempts.json'), 'utf8')) as Attempt[];
    for (const att of attempts) {
      const a = JSON.parse(readFileSync(join(out, att.agents.a.stdout), 'utf8').trim()) as { steps: Array<{ path: string; ok: boolean }> };
      const b = JSON.parse(readFileSync(join(out, att.agents.b.stdout), 'utf8').trim()) as { replyTo: string; peer: string };
      t.deepEqual(a.steps.map((s) => [s.path, s.ok]), [['plain-udp', false], ['matconnect', true]], 'the plain step failed first');
      // B answered to A's public address from the header, while A's datagrams came from A's gateway
      const n = 20 + 2 * att.lane;
      t.is(b.replyTo, `198.51.100.${n}:40000`);
      t.regex(b.peer, new RegExp(`^203\\.0\\.113\\.${n}:\\d+$`));
    }
    t.regex(r.stdout, /matconnect rescued 1 of 1 cell/);
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
  });

  test('matconnect topology: the udp-punch agent fails there, and the harness reports it', async (t) => {
    const out = tempDir('matconnect-udp');
    const r = await cli(['matconnect', '--agent', 'agents/udp-punch/peer.ts', '--tries', '1', '--out', out]);
    t.is(r.exitCode, 1, r.all);
    const c = cell(readReport(out), 'cloud-eip', 'cloud-eip');
    t.deepEqual([c.outcome, c.match], ['failed', false]);
    t.regex(c.reasons[0] ?? '', /no pong within 600 ms/);
    // the evidence shows the gateway's random-port snat and the stateless public address
    const nft = readFileSync(join(out, c.evidence, 'try-1', 'router-a.nft'), 'utf8');
    t.regex(nft, /ip daddr 198\.51\.100\.20 notrack ip daddr set 10\.0\.1\.10/);
    t.regex(nft, /snat to 203\.0\.113\.20 random/);
  });
}
