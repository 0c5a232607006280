// Every way out of a run tears the lab down: Ctrl-C (SIGINT), SIGTERM, and --keep followed by clean.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli, explain, hostState, isRoot, namespaces, needsRoot, processesOfRun, readReport, ROOT, runIdOf, tempDir } from './helpers.ts';

/** Wait on state, not time: until `check` holds, polling, or fail after `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

if (needsRoot(test)) {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    test.serial(`${signal} mid-run removes every namespace and agent of the run, exit ${code}`, async (t) => {
      const before = await hostState();
      const out = tempDir(signal);
      const run = cli(['full-matrix', '--out', out]);
      // interrupt once the lab is up and agents are running
      await until(() => existsSync(join(out, 'topology.json')), 20_000, 'topology.json');
      const runId = (JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { runId: string }).runId;
      await until(() => processesOfRun(runId).length >= 3, 20_000, 'agents to start');
      const t0 = Date.now();
      run.kill(signal);
      const r = await run;
      t.is(r.exitCode, code, `${r.signal ?? ''} after ${Date.now() - t0} ms: ${r.all}`);
      t.regex(r.stderr, new RegExp(`${signal}: tearing down run ${runId}`));
      t.deepEqual(await namespaces(`nmx-${runId}-`), []);
      t.deepEqual(processesOfRun(runId), []);
      t.deepEqual(await hostState(), before);
    });
  }

  // The build is a race: `ip -batch` creates the run's namespaces while the signal arrives. Teardown
  // must end or wait for every creation still in flight before it deletes, or what is created after
  // the delete survives an exit that claims a full teardown.
  test.serial('a signal at any point of the build leaves no namespace of the run', async (t) => {
    const before = await hostState();
    const delays = [0, 2, 5, 10, 20, 35, 60, 100, 180, 300];
    for (const [i, delay] of delays.entries()) {
      const [signal, code] = i % 2 === 0 ? (['SIGINT', 130] as const) : (['SIGTERM', 143] as const);
      const out = tempDir(`build-${delay}`);
      const run = cli(['full-matrix', '--out', out]);
      await until(() => existsSync(join(out, 'topology.json')), 20_000, 'topology.json');
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      run.kill(signal);
      const r = await run;
      const runId = (JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { runId: string }).runId;
      const left = await namespaces(`nmx-${runId}-`);
      t.deepEqual(left, [], `${signal} ${delay} ms after topology.json left ${left.length} namespaces (exit ${r.exitCode})`);
      t.is(r.exitCode, code, `${signal} ${delay} ms: ${r.all}`);
      t.deepEqual(processesOfRun(runId), []);
    }
    t.deepEqual(await hostState(), before);
  });

  // The same race made certain: the `ip -batch` that creates the namespaces is caught (stopped) mid-way
  // and the run signalled. Teardown must end that creation before it deletes: once the stopped `ip` is
  // let go again, it must not be able to add a namespace of the run.
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    test.serial(`${signal} while the namespaces are being created leaves none behind`, async (t) => {
      const out = tempDir(`creating-${signal}`);
      // twelve lanes: a batch of 50 namespaces, long enough to be caught in the act (the default lanes
      // of a serving agent, 3, make one of 14 that is often over before it is seen)
      const run = cli(['full-matrix', '--jobs', '12', '--out', out]);
      const children = () => {
        try {
          return readFileSync(`/proc/${run.pid}/task/${run.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        } catch {
          return [];
        }
      };
      const cmdline = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        } catch {
          return [];
        }
      };
      let creator = 0;
      await until(() => {
        creator = children().find((pid) => {
          const argv = cmdline(pid);
          return argv[0]?.endsWith('ip') === true && argv.includes('-batch') && !argv.includes('-n');
        }) ?? 0;
        return creator > 0;
      }, 30_000, 'the ip that creates the namespaces');
      process.kill(creator, 'SIGSTOP');
      run.kill(signal);
      const r = await Promise.race([run, new Promise<null>((res) => setTimeout(() => res(null), 15_000))]);
      // let the stopped creator go on, if it is still there, and give it the time to do harm
      try {
        process.kill(creator, 'SIGCONT');
      } catch {
        /* ended by the teardown, as it should be */
      }
      if (r === null) {
        await run;
        t.fail('the run did not end within 15 s of the signal');
      }
      await until(() => !existsSync(`/proc/${creator}`) || readFileSync(`/proc/${creator}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true, 5_000, 'the creator to end');
      const runId = (JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { runId: string }).runId;
      t.teardown(() => execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), runId], { reject: false }).then(() => {}));
      t.deepEqual(await namespaces(`nmx-${runId}-`), []);
      t.is(r?.exitCode, code, r?.all);
    });
  }

  test.serial('--keep leaves the topology up with topology.json; npm run clean removes it', async (t) => {
    const out = tempDir('keep');
    const r = await cli(['symmetric-vs-cone', '--tries', '1', '--keep', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const topo = JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { runId: string; namespaces: string[] };
    // whatever fails below, don't leave the kept lab on the machine
    t.teardown(() => execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), topo.runId], { reject: false }).then(() => {}));
    t.regex(r.stdout, new RegExp(`npm run clean -- ${topo.runId}`));
    t.deepEqual((await namespaces(`nmx-${topo.runId}-`)).sort(), [...topo.namespaces].sort());
    t.deepEqual(processesOfRun(topo.runId), [], 'agents are ended even when the topology is kept');
    // the kept lab is usable: the host behind router A reaches the rendezvous
    const host = topo.namespaces.find((n) => n.endsWith('-0ha'))!;
    // (a TCP connect to a closed port of the rendezvous is refused: the round trip through the NAT works)
    const probe = `require('net').connect(9, '203.0.113.10').on('error', (e) => process.exit(e.code === 'ECONNREFUSED' ? 0 : 1)).on('connect', () => process.exit(2))`;
    const reach = await execa('ip', ['netns', 'exec', host, process.execPath, '-e', probe], { reject: false, timeout: 5000 });
    t.is(reach.exitCode, 0, `host behind router A cannot reach the rendezvous address: ${reach.stderr}`);
    // npm run shell runs a command inside a node of the kept lab
    const sh = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/shell.ts'), topo.runId, '0ra', 'nft', 'list', 'ruleset'], { reject: false });
    t.is(sh.exitCode, 0, sh.stderr);
    t.regex(sh.stdout, /table ip nmx \{/);
    // the run folder stands for its run (how a CI job removes only its own lab)
    const bad = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), join(out, 'nope')], { reject: false });
    t.is(bad.exitCode, 2);
    t.regex(bad.stderr, /neither a run id .* nor a run folder with a topology.json/);
    t.is((await namespaces(`nmx-${topo.runId}-`)).length, topo.namespaces.length, 'a bad argument removes nothing');
    const c = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), out], { reject: false });
    t.is(c.exitCode, 0, c.stderr);
    t.regex(c.stdout, new RegExp(`removed ${topo.namespaces.length} namespaces of run ${topo.runId}`));
    t.deepEqual(await namespaces(`nmx-${topo.runId}-`), []);
    const again = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), topo.runId]);
    t.regex(again.stdout, /nothing to do/, 'clean is idempotent');
  });

  test.serial('two runs at once get the same results as alone', async (t) => {
    const outcomes = (out: string) => readReport(out).cells.map((c) => `${c.a}×${c.b}:${c.outcome}:${c.successes}/${c.tries}`);
    const alone = tempDir('alone');
    t.is((await cli(['symmetric-vs-cone', '--out', alone])).exitCode, 0);
    const [o1, o2] = [tempDir('par1'), tempDir('par2')];
    const [r1, r2] = await Promise.all([cli(['symmetric-vs-cone', '--out', o1]), cli(['symmetric-vs-cone', '--out', o2])]);
    t.is(r1.exitCode, 0, r1.all);
    t.is(r2.exitCode, 0, r2.all);
    t.not(runIdOf(o1), runIdOf(o2), 'each run has its own namespaces');
    t.deepEqual(outcomes(o1), outcomes(alone));
    t.deepEqual(outcomes(o2), outcomes(alone));
  });

  test.serial('after a SIGKILL mid-run, npm run clean restores the host exactly', async (t) => {
    const before = await hostState();
    const out = tempDir('sigkill');
    const run = cli(['full-matrix', '--out', out]);
    await until(() => existsSync(join(out, 'topology.json')), 20_000, 'topology.json');
    const runId = runIdOf(out);
    await until(() => processesOfRun(runId).length >= 3, 20_000, 'agents to start');
    run.kill('SIGKILL');
    await run;
    t.true((await namespaces(`nmx-${runId}-`)).length > 0, 'a SIGKILL leaves the lab behind: nothing can run then');
    // its own run only: a clean of every nmx-* namespace would take down other runs on the machine
    const c = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), runId], { reject: false });
    t.is(c.exitCode, 0, c.stderr);
    t.deepEqual(await namespaces(`nmx-${runId}-`), []);
    t.deepEqual(processesOfRun(runId), [], 'clean ended the orphaned agents and rendezvous');
    t.deepEqual(await hostState(), before);
  });
}

if (isRoot) {
  test.serial('npm run clean finds a run\'s process whose namespace is already deleted', async (t) => {
    const runId = `cl${Date.now().toString(36).slice(-6)}`;
    const ns = `nmx-${runId}-0ha`;
    await execa('ip', ['netns', 'add', ns]);
    t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }).then(() => {}));
    // a process of the run inside its namespace, then the namespace's name removed under it (as an old
    // harness did while a wrapper's child still ran): nothing lists that namespace any more
    const sleeper = execa('nsenter', [`--net=/run/netns/${ns}`, '--', 'sleep', '60'], { env: { NMX_RUN: runId }, reject: false });
    t.teardown(() => { sleeper.kill('SIGKILL'); });
    await until(() => processesOfRun(runId).length === 1, 5000, 'the sleeper to start');
    await execa('ip', ['netns', 'del', ns]);
    t.deepEqual(await namespaces(`nmx-${runId}-`), []);
    const c = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/clean.ts'), runId], { reject: false });
    t.is(c.exitCode, 0, c.stderr);
    t.regex(c.stdout, /ended 1 process$/m);
    const r = await sleeper;
    t.is(r.signal, 'SIGTERM');
    t.deepEqual(processesOfRun(runId), []);
  });
}
