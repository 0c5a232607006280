// Packets conntrack calls invalid: real routers drop them, Linux alone forwards them untranslated (with
// the host's private source address). natmatrix's routers drop them; ":invalid=forward" keeps Linux's
// way. A SYN+FIN segment (invalid to conntrack) sent from behind each router to the public node.
import { join } from 'node:path';
import test from 'ava';
import { buildLab } from '../../harness/index.ts';
import { FIXTURES, needsRoot } from './helpers.ts';

const SCRIPT = join(FIXTURES, '..', 'lab', 'tcp-invalid.py');

if (needsRoot(test)) {
  test('an invalid segment is dropped by default, and leaves untranslated with :invalid=forward', async (t) => {
    await using lab = await buildLab({ a: 'full-cone', b: 'full-cone:invalid=forward' });
    let ready!: () => void;
    const bound = new Promise<void>((r) => (ready = r));
    let seen = '';
    const watcher = lab.spawn('public', ['python3', SCRIPT, 'listen', '7777', '4'], {
      onStdout: (chunk) => {
        seen += chunk;
        if (seen.includes('ready\n')) ready();
      },
    });
    await Promise.race([bound, watcher.done.then((r) => Promise.reject(new Error(`watcher ended: ${r.stderr}`)))]);
    const ip = lab.node('public').ip;
    for (const side of ['a', 'b'] as const) {
      const r = await lab.exec(side, ['python3', SCRIPT, 'send', ip, '7777'], { timeoutMs: 10_000 });
      t.is(r.exitCode, 0, r.stderr);
    }
    const r = await watcher.done;
    const sources = new Set(r.stdout.split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l)));
    // b forwards it as Linux does: with b's private address, untranslated (a leak real routers prevent)
    t.true(sources.has(lab.node('b').ip), `from b's private ${lab.node('b').ip}: ${[...sources].join(', ') || 'nothing'}`);
    // a drops it: neither its private nor its public address shows up
    t.false(sources.has(lab.node('a').ip), 'a forwarded an invalid segment');
    t.false(sources.has(lab.router('a').wanIp), 'a translated an invalid segment');
    t.deepEqual([...sources], [lab.node('b').ip]);
  });
}
