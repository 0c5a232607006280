// confine: the argv that confines an agent, the init's report read back, reachability by mode bits.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { AGENT_USER, confinedArgv, giveFiles, GIVEN_DIR, hiddenBy, readInit, reveals, unusable } from '../../harness/confine.ts';
import type { ProcResult } from '../../harness/proc.ts';

const result = (o: Partial<ProcResult>): ProcResult => ({ exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false, overflow: false, spawnError: null, leftover: [], pipesHeld: false, ...o });

test('the init\'s lines become leftovers and a signal, and leave the stderr', (t) => {
  const r = readInit(result({ exitCode: 143, stderr: 'agent says\n\n[natmatrix-init: left behind: sleep my daemon]\n\n[natmatrix-init: killed by SIGTERM]\n', leftover: ['x'] }));
  t.deepEqual(r.leftover, ['x', 'sleep', 'my', 'daemon']);
  t.is(r.signal, 'SIGTERM');
  t.is(r.exitCode, null);
  t.is(r.stderr, 'agent says\n');
});

test('an agent\'s own exit 143 without the init\'s line stays an exit code', (t) => {
  const r = readInit(result({ exitCode: 143, stderr: 'bye\n' }));
  t.is(r.exitCode, 143);
  t.is(r.signal, null);
});

test('a failure to confine is a spawn error', (t) => {
  const r = readInit(result({ exitCode: 125, stderr: '[natmatrix-init: cannot confine the agent: cannot make / read-only]\n' }));
  t.regex(r.spawnError?.message ?? '', /cannot confine the agent: cannot make \/ read-only/);
});

test('files named in the environment are given as private copies under /tmp', (t) => {
  const g = giveFiles({ NMX_RELAY_CA: '/runs/x/relay/cert.pem', OTHER: 'y' }, ['NMX_RELAY_CA', 'NMX_MISSING']);
  t.deepEqual(g.files, [['/runs/x/relay/cert.pem', `${GIVEN_DIR}/nmx_relay_ca-cert.pem`]]);
  t.is(g.env.NMX_RELAY_CA, `${GIVEN_DIR}/nmx_relay_ca-cert.pem`);
  t.is(g.env.OTHER, 'y');
});

test('the confined argv: own PID and mount namespaces, the init, the agent user, then the agent', (t) => {
  const argv = confinedArgv(['/usr/bin/node', '/a/peer.mjs'], { files: [['/s', '/tmp/natmatrix/s']] });
  t.true(argv[0]!.endsWith('unshare'));
  for (const flag of ['--pid', '--fork', '--kill-child', '--mount', '--mount-proc']) t.true(argv.includes(flag), flag);
  t.true(argv.some((a) => a.endsWith('confine.sh')));
  const i = argv.findIndex((a) => a.endsWith('confine.sh'));
  t.deepEqual(argv.slice(i + 1), [String(AGENT_USER.uid), String(AGENT_USER.gid), '--file', '/s', '/tmp/natmatrix/s', '--', '/usr/bin/node', '/a/peer.mjs']);
});

test('what hides a folder from the agent user: a closed folder on its way, its private /tmp, or nothing', (t) => {
  const dir = mkdtempSync(join('/var/tmp', 'nmx-confine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'closed/inner'), { recursive: true });
  chmodSync(join(dir, 'closed'), 0o700);
  t.is(hiddenBy(join(dir, 'closed/inner')), join(dir, 'closed'));
  t.is(hiddenBy(join(dir, 'closed')), null, 'a folder is not hidden by its own mode (unusable says so)');
  t.is(hiddenBy('/tmp/x/y'), '/tmp');
  t.is(hiddenBy('/dev/shm/x'), '/dev/shm');
  t.is(hiddenBy('/usr/bin'), null);
});

test('what the agent user cannot use even when shown: a closed folder, an unreadable file, a script it may not execute', (t) => {
  const dir = mkdtempSync(join('/var/tmp', 'nmx-confine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'closed'), { mode: 0o700 });
  chmodSync(join(dir, 'closed'), 0o700);
  writeFileSync(join(dir, 'closed/peer.sh'), '');
  for (const [name, mode] of [['secret.sh', 0o700], ['script.sh', 0o744], ['open.sh', 0o755]] as const) {
    writeFileSync(join(dir, name), '');
    chmodSync(join(dir, name), mode);
  }
  t.is(unusable(join(dir, 'closed/peer.sh'), true), `${dir}/closed is closed to other users (mode 700)`);
  t.is(unusable(join(dir, 'secret.sh'), false), `${dir}/secret.sh is not readable by other users (mode 700)`);
  t.is(unusable(join(dir, 'script.sh'), true), `${dir}/script.sh is not executable by other users (mode 744)`);
  t.is(unusable(join(dir, 'script.sh'), false), null, 'read by an interpreter, it needs no x');
  t.is(unusable(join(dir, 'open.sh'), true), null);
});

test("reveals: the folders of an agent's files the host hides, once each, the agent's own folder for what it holds", (t) => {
  const base = mkdtempSync(join('/var/tmp', 'nmx-confine-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  chmodSync(base, 0o700); // closed: everything below is hidden
  mkdirSync(join(base, 'agent/lib'), { recursive: true });
  for (const f of ['agent/peer.mjs', 'agent/lib/x.mjs']) writeFileSync(join(base, f), '');
  const shown = reveals('x', [[process.execPath, join(base, 'agent/peer.mjs')], [process.execPath, join(base, 'agent/lib/x.mjs')]], join(base, 'agent'), '/');
  t.deepEqual(shown, [[base, join(base, 'agent')]]);
  t.deepEqual(reveals('y', [[process.execPath, '/usr/bin/env']], undefined, '/'), [], 'nothing hidden, nothing to show');
  t.deepEqual(reveals('y', [[process.execPath, '/usr/bin/env']], undefined, join(base, 'agent')), [[base, join(base, 'agent')]], 'a hidden working directory is shown');
  chmodSync(join(base, 'agent/peer.mjs'), 0o600);
  t.throws(() => reveals('x', [[process.execPath, join(base, 'agent/peer.mjs')]], undefined, '/'), { message: /^agent x runs as the unprivileged user \S+, which cannot use .*peer\.mjs: .*not readable by other users \(mode 600\)/ });
});
