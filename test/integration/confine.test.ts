// Agents run confined (issue 11, defect 2): an unprivileged user with no capabilities and no_new_privs,
// in PID and mount namespaces of its own, with a read-only root and a private /tmp. An agent that tries
// to join another namespace, to see or signal a harness process, or to write host files is refused
// every time. It sends no traffic: each attempt is a namespace switch, a signal or a write.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { cli, explain, needsRoot, processesOfRun, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

const ESCAPE = join(ROOT, 'test/fixtures/agents/escape.sh');
const RENDEZVOUS = join(ROOT, 'agents/udp-punch/rendezvous.ts');

function scenario(label: string, agent: Record<string, unknown>): string {
  const file = join(tempDir(label), `${label}.json`);
  writeFileSync(file, JSON.stringify({
    name: label, description: 'an agent that tries to leave its confinement', a: ['full-cone'], b: ['full-cone'], tries: 1, timeoutMs: 2000,
    agents: { escape: { rendezvous: RENDEZVOUS, ...agent } },
    expect: { 'full-cone': { 'full-cone': 'failed' } },
  }));
  return file;
}

/** "escape: what result" lines of an agent's stderr → {what: result} */
function attempts(stderr: string): Record<string, string> {
  return Object.fromEntries([...stderr.matchAll(/^escape: (\S+) (.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

if (needsRoot(test)) {
  test.serial('a confined agent cannot join a namespace, see or signal the harness, or write host files', async (t) => {
    // host places it may try to write: a world-writable folder in the checkout and one in the host's
    // /tmp (both open to anyone, so only the confinement stops it), and /etc
    const inCheckout = mkdtempSync(join(ROOT, '.escape-'));
    const inTmp = tempDir('escape-target');
    for (const d of [inCheckout, inTmp]) chmodSync(d, 0o1777);
    t.teardown(() => rmSync(inCheckout, { recursive: true, force: true }));
    const targets = [join(inCheckout, 'escaped'), join(inTmp, 'escaped'), '/etc/natmatrix-escaped'];
    const out = tempDir('escape-run');
    const r = await cli([scenario('escape', { peer: ESCAPE }), '--out', out], {
      NMX_TEST_HARNESS_PID: String(process.pid),
      NMX_TEST_WRITE_TARGETS: targets.join(' '),
    });
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    t.false(report.agents[0]!.privileged);
    for (const role of ['a', 'b']) {
      const seen = attempts(readFileSync(join(out, 'cells/full-cone-vs-full-cone/try-1', `${role}.stderr`), 'utf8'));
      t.is(seen.uid, '65534', `${role} runs as nobody`);
      t.is(seen.capeff, '0000000000000000', `${role} has no capability`);
      t.is(seen.nnp, '1', `${role} has no_new_privs`);
      t.true(Number(seen.processes) <= 6, `${role} sees only its own few processes, not ${seen.processes}`);
      t.is(seen['setns-lab'], 'refused', `${role} cannot join another namespace of the lab`);
      t.is(seen['setns-new'], 'refused', `${role} cannot make a network namespace`);
      t.is(seen['see-harness'], 'refused', `${role} cannot see a harness process`);
      t.is(seen['signal-harness'], 'refused', `${role} cannot signal a harness process`);
      t.is(seen[`write:${targets[0]}`], 'refused', `${role} cannot write into the checkout`);
      t.is(seen['write:/etc/natmatrix-escaped'], 'refused', `${role} cannot write /etc`);
      t.is(seen['write-own-tmp'], 'ALLOWED', `${role} has a /tmp of its own`);
    }
    for (const f of targets) t.false(existsSync(f), `${f} was not written on the host`);
    t.deepEqual(processesOfRun(runIdOf(out)), []);
  });

  test.serial('an agent that declares "privileged" runs as root, and the report says so', async (t) => {
    const out = tempDir('privileged-run');
    const r = await cli([scenario('privileged', { peer: ESCAPE, privileged: true }), '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    t.true(readReport(out).agents[0]!.privileged);
    t.regex(r.stdout, /privileged: ran as root, unconfined/);
    t.is(attempts(readFileSync(join(out, 'cells/full-cone-vs-full-cone/try-1/a.stderr'), 'utf8')).uid, '0');
  });

  test.serial('an agent in a folder the host hides (a closed temporary folder) is shown to it read-only, and runs confined', async (t) => {
    const closed = tempDir('closed'); // mkdtemp: mode 700, in the host's /tmp, which the agent does not see
    chmodSync(closed, 0o700);
    mkdirSync(join(closed, 'bin'));
    copyFileSync(ESCAPE, join(closed, 'bin/peer.sh'));
    chmodSync(join(closed, 'bin/peer.sh'), 0o755);
    const out = tempDir('closed-run');
    const r = await cli([scenario('closed', { peer: join(closed, 'bin/peer.sh') }), '--out', out], {
      NMX_TEST_HARNESS_PID: String(process.pid),
      NMX_TEST_WRITE_TARGETS: join(closed, 'bin/escaped'),
    });
    t.is(r.exitCode, 0, explain(r, out));
    const seen = attempts(readFileSync(join(out, 'cells/full-cone-vs-full-cone/try-1/a.stderr'), 'utf8'));
    t.is(seen.uid, '65534');
    t.is(seen[`write:${join(closed, 'bin/escaped')}`], 'refused', 'the folder it is shown is read-only');
    t.false(existsSync(join(closed, 'bin/escaped')));
  });

  test.serial('an agent whose own folder is closed to other users is refused with one line before anything is built', async (t) => {
    const dir = tempDir('closed-own');
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'bin'), { mode: 0o700 });
    chmodSync(join(dir, 'bin'), 0o700);
    copyFileSync(ESCAPE, join(dir, 'bin/peer.sh'));
    chmodSync(join(dir, 'bin/peer.sh'), 0o755);
    const r = await cli([scenario('closed-own', { peer: join(dir, 'bin/peer.sh') })]);
    t.is(r.exitCode, 2, r.all);
    t.regex(r.stderr, new RegExp(`^natmatrix: agent escape runs as the unprivileged user nobody, which cannot use ${dir}/bin/peer.sh: ${dir}/bin is closed to other users \\(mode 700\\); open it`, 'm'));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
}
