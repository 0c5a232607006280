// Stock kernels differ: br_netfilter (the net.bridge.* sysctls) is built in here, but a module that
// stock Ubuntu runners may not load. natmatrix writes its switch only where the key exists; with
// NMX_BR_NETFILTER=absent it acts as on a kernel without it. Both cases build, run and tear down.
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli, explain, namespaces, needsRoot, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

const key = (ns: string) => execa('ip', ['netns', 'exec', ns, 'sysctl', '-n', 'net.bridge.bridge-nf-call-iptables']).then((r) => r.stdout.trim());

if (needsRoot(test)) {
  for (const present of [true, false]) {
    test(`br_netfilter ${present ? 'present: its switch is turned off in the routers and the internet' : 'absent: nothing writes the key, and the run is the same'}`, async (t) => {
      const out = join(tempDir('br-nf'), 'run');
      const r = await cli(['symmetric-vs-cone', '--tries', '1', '--keep', '--out', out], present ? {} : { NMX_BR_NETFILTER: 'absent' });
      const run = runIdOf(out);
      t.teardown(() => execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), run], { reject: false }).then(() => {}));
      t.is(r.exitCode, 0, explain(r, out));
      t.deepEqual(readReport(out).cells.map((c) => c.successes), [1, 1, 0]);
      // on this kernel the key exists: a new namespace has it on (1); natmatrix turns it off (0) only
      // when it knows the key is there
      const want = present ? '0' : '1';
      t.is(await key(`nmx-${run}-inet`), want);
      t.is(await key(`nmx-${run}-0ra`), want);
      t.is(await key(`nmx-${run}-0rb`), want);
      await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), run]);
      t.deepEqual(await namespaces(`nmx-${run}-`), []);
    });
  }
}
