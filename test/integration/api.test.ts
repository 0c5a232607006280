// The library API (issue 12, part 2): runScenario returns the report the command would write, on both
// sides of success; buildLab gives one lane to drive, whose NATs really translate as named, and which
// leaves nothing behind on dispose, on bad input, and on a signal.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { buildLab, defineScenario, LeftoverError, runScenario, UsageError, type NatLab } from '../../harness/index.ts';
import { namespaces, needsRoot, processesOfRun, ROOT, tempDir } from './helpers.ts';

const LAB = join(ROOT, 'test/fixtures/lab');

/** Start the public observer on ports 5000 and 5001 and wait until it has bound them. */
async function observer(lab: NatLab) {
  let ready!: () => void;
  const bound = new Promise<void>((r) => (ready = r));
  let out = '';
  const proc = lab.spawn('public', [process.execPath, join(LAB, 'udp-observe.mjs'), '5000', '5001'], {
    onStdout: (chunk) => {
      out += chunk;
      if (out.includes('ready\n')) ready();
    },
  });
  await Promise.race([bound, proc.done.then((r) => Promise.reject(new Error(`observer ended: ${r.stderr}`)))]);
  return proc;
}

/** The source ports the public node saw from one socket of `node` sending to two of its ports. */
async function mappedPorts(lab: NatLab, node: 'a' | 'b'): Promise<string[]> {
  const ip = lab.node('public').ip;
  const r = await lab.exec(node, [process.execPath, join(LAB, 'udp-send.mjs'), `${ip}:5000`, `${ip}:5001`], { timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new Error(`udp-send in ${node}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => l.split(' ')[1]!);
}

if (needsRoot(test)) {
  test.serial('buildLab: a symmetric NAT maps one socket to a new port per destination, a full cone keeps one; disposed, nothing is left', async (t) => {
    let runId = '';
    let spawnedPid: number | undefined;
    {
      await using lab = await buildLab({ a: 'symmetric', b: 'full-cone' });
      runId = lab.runId;
      t.is(lab.router('a').wanIp, '203.0.113.20');
      t.is(lab.node('a').ip, '10.0.1.10');
      t.true((await namespaces(`nmx-${runId}-`)).length >= 6, 'the lane, the internet and the public node exist');
      const obs = await observer(lab);
      spawnedPid = obs.pid;

      const viaSymmetric = await mappedPorts(lab, 'a');
      t.is(viaSymmetric.length, 2);
      t.true(viaSymmetric.every((ep) => ep.startsWith('203.0.113.20:')), `seen from a's router: ${viaSymmetric.join(', ')}`);
      t.not(viaSymmetric[0]!.split(':')[1], viaSymmetric[1]!.split(':')[1], 'symmetric: one mapping per destination');

      const viaCone = await mappedPorts(lab, 'b');
      t.true(viaCone.every((ep) => ep.startsWith('203.0.113.21:')));
      t.is(viaCone[0], viaCone[1], 'full cone: one mapping for every destination');

      // as the calling process's user by default; confined: the agent user, in a PID namespace of its own
      t.is((await lab.exec('b', ['id', '-u'])).stdout.trim(), '0');
      const confined = await lab.exec('b', ['sh', '-c', 'id -u; echo $$'], { confine: true });
      t.is(confined.exitCode, 0, confined.stderr);
      t.not(confined.stdout.split('\n')[0], '0', 'not root when confined');
      t.true(Number(confined.stdout.split('\n')[1]) < 10, `a low PID in its own PID namespace: ${confined.stdout}`);

      const ct = await lab.router('a').conntrack();
      t.regex(ct, /src=10\.0\.1\.10 dst=203\.0\.113\.10 .*dport=5001/, 'the router\'s conntrack holds the flow');
      t.regex(await lab.router('a').ruleset(), /table ip nmx/);
      await lab.router('a').reset();
      t.notRegex(await lab.router('a').conntrack(), /dport=5001/, 'reset forgets every binding');
    }
    t.deepEqual(await namespaces(`nmx-${runId}-`), [], 'dispose removed every namespace');
    t.false(existsSync(`/proc/${spawnedPid}`), 'and ended what was spawned into the lab');
  });

  test.serial('buildLab: a misspelled NAT type is one UsageError with a suggestion, and nothing is built', async (t) => {
    const before = await namespaces();
    const e = await t.throwsAsync(buildLab({ a: 'symetric', b: 'full-cone' }), { instanceOf: UsageError });
    t.regex(e!.message, /unknown NAT type "symetric" for a.*did you mean "symmetric"/);
    t.deepEqual(await namespaces(), before);
  });

  test.serial('buildLab: SIGTERM to a process holding two labs tears both down, then exits 143', async (t) => {
    const script = join(tempDir('lab-signal'), 'hold.mts');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(script, `import { buildLab } from ${JSON.stringify(join(ROOT, 'harness/index.ts'))};
const one = await buildLab({ a: 'port-restricted', b: 'full-cone' });
const two = await buildLab({ a: 'symmetric', b: 'address-restricted' });
one.spawn('a', ['sleep', '60'], { env: { NMX_RUN: one.runId } });
process.stdout.write(one.runId + ' ' + two.runId + '\\n');
await new Promise(() => setTimeout(() => {}, 120_000));
`);
    const child = execa(process.execPath, ['--import', 'tsx', script], { reject: false, forceKillAfterDelay: false, cwd: ROOT });
    const ids = await new Promise<string[]>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => resolve(d.toString().trim().split(' ')));
      void child.then((r) => reject(new Error(`ended early: ${r.exitCode} ${r.stderr}`)));
    });
    t.is(ids.length, 2);
    t.true((await namespaces(`nmx-${ids[0]}-`)).length > 0);
    t.is(processesOfRun(ids[0]!).length, 1, 'the spawned sleep runs');
    child.kill('SIGTERM');
    const r = await child;
    t.is(r.exitCode, 143, r.stderr);
    for (const id of ids) t.deepEqual(await namespaces(`nmx-${id}-`), [], `lab ${id} torn down`);
    t.deepEqual(processesOfRun(ids[0]!), []);
  });

  test.serial('runScenario: returns the report of a run whose cells are as expected, and one whose expectation is wrong', async (t) => {
    const out = tempDir('api-run');
    const report = await runScenario('symmetric-vs-cone', { tries: 1, out, handleSignals: false });
    t.is(report.scenario, 'symmetric-vs-cone');
    t.is(report.outDir, out);
    t.true(existsSync(join(out, 'report.json')));
    t.deepEqual(report.cells.map((c) => `${c.b}:${c.outcome}`), ['full-cone:direct', 'address-restricted:direct', 'port-restricted:failed']);
    t.is(report.summary.mismatched, 0);
    t.deepEqual(processesOfRun(report.runId), []);
    t.deepEqual(await namespaces(`nmx-${report.runId}-`), []);

    // the same pairing claimed to connect: the report says so, it does not throw
    const wrong = defineScenario({
      name: 'wrong-claim', description: 'expects a pairing that cannot connect to connect',
      a: ['symmetric'], b: ['port-restricted'], tries: 1, timeoutMs: 400,
      expect: { symmetric: { 'port-restricted': 'direct' } },
    });
    const r2 = await runScenario(wrong, { out: tempDir('api-wrong') });
    t.is(r2.cells[0]!.outcome, 'failed');
    t.false(r2.cells[0]!.match);
    t.is(r2.summary.mismatched, 1);
  });

  test.serial('runScenario: bad input is a UsageError before anything is built', async (t) => {
    const before = await namespaces();
    await t.throwsAsync(runScenario('symetric-vs-cone'), { instanceOf: UsageError, message: /did you mean "symmetric-vs-cone"/ });
    await t.throwsAsync(runScenario({ name: 'x', description: 'x', a: ['nope'], b: ['full-cone'] } as never), { instanceOf: UsageError, message: /nope/ });
    await t.throwsAsync(runScenario('symmetric-vs-cone', { tries: 0 }), { instanceOf: UsageError, message: /tries must be a whole number/ });
    t.deepEqual(await namespaces(), before);
    t.truthy(LeftoverError);
  });
}
