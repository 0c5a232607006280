// Signed rendezvous: forged, unsigned, truncated and replayed introductions from an attacker beside the
// rendezvous are dropped, and the genuine punch still gives the textbook result.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { cli, explain, namespaces, needsRoot, readReport, runIdOf, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('rogue-rendezvous: every attack dropped, every pairing as expected, no peer aims at the attacker', async (t) => {
    const out = tempDir('rogue');
    const r = await cli(['rogue-rendezvous', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.is(report.summary.matched, 6);
    const rdvLog = readFileSync(join(out, 'rendezvous.stderr.log'), 'utf8');
    t.regex(rdvLog, /attacker: sent forged \(wrong key, ep 203\.0\.113\.99:9\) introduction/);
    // every peer log of every try: the attacks arrived and were dropped for the right reason
    const logs: string[] = [];
    for (const c of report.cells) {
      for (const tr of readdirSync(join(out, c.evidence))) {
        for (const role of ['a', 'b']) logs.push(readFileSync(join(out, c.evidence, tr, `${role}.stderr`), 'utf8'));
      }
    }
    t.is(logs.length, 6 * 2 * 2);
    const all = logs.join('\n');
    t.regex(all, /drop \d+ B from 203\.0\.113\.10:3478: bad signature/);
    t.regex(all, /drop \d+ B from 203\.0\.113\.10:3478: malformed signature/);
    t.regex(all, /drop \d+ B from 203\.0\.113\.10:3478: replayed datagram \(peer #\d+ from rdv was already accepted\)/);
    t.regex(all, /drop \d+ B from 203\.0\.113\.10:3478: wrong session/);
    for (const log of logs) t.notRegex(log, /203\.0\.113\.99/, 'no peer ever learned the forged endpoint');
    t.deepEqual(await namespaces(`nmx-${runIdOf(out)}-`), []);
  });
}
