// confine: the argv that confines an agent, the init's report read back, reachability by mode bits.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { AGENT_USER, confinedArgv, giveFiles, GIVEN_DIR, readInit, unreachable } from '../../harness/confine.ts';
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

test('reachability by mode bits: a closed folder on the way, an unreadable file, an open path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nmx-confine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'closed'), { mode: 0o700 });
  chmodSync(join(dir, 'closed'), 0o700);
  writeFileSync(join(dir, 'closed/peer.sh'), '');
  writeFileSync(join(dir, 'secret.sh'), '');
  chmodSync(join(dir, 'secret.sh'), 0o700);
  writeFileSync(join(dir, 'open.sh'), '');
  chmodSync(join(dir, 'open.sh'), 0o755);
  t.is(unreachable(join(dir, 'closed/peer.sh')), `${dir}/closed is closed to other users (mode 700)`);
  t.is(unreachable(join(dir, 'secret.sh')), `${dir}/secret.sh is not readable by other users (mode 700)`);
  t.is(unreachable(join(dir, 'open.sh')), null);
});
