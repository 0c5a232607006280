// Run folders are private (0700) and, under sudo, belong to the user who ran sudo once the run is over:
// after a run that passes, one that fails, and one ended by SIGINT (issue 11, defect 6).
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { cli, needsRoot, processesOfRun, ROOT, tempDir } from './helpers.ts';

// what sudo puts in the environment of the command it runs
const SUDO = { SUDO_UID: '65534', SUDO_GID: '65534', SUDO_USER: 'nobody' };

/** Every path in the run folder (the folder too) that is not owned by uid:gid 65534. */
function notHandedOver(dir: string): string[] {
  const bad: string[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    if (st.uid !== 65534 || st.gid !== 65534) bad.push(`${p} (${st.uid}:${st.gid})`);
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(join(p, e));
  };
  visit(dir);
  return bad;
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

if (needsRoot(test)) {
  test.serial('a run folder is created 0700 and, under sudo, handed to the invoking user at the end', async (t) => {
    const out = join(tempDir('owned'), 'run');
    const r = await cli(['symmetric-vs-cone', '--tries', '1', '--out', out], SUDO);
    t.is(r.exitCode, 0, r.all);
    t.is(lstatSync(out).mode & 0o777, 0o700);
    t.true(existsSync(join(out, 'report.json')));
    t.deepEqual(notHandedOver(out), []);
  });

  test.serial('without sudo the run folder stays root\'s, and is 0700', async (t) => {
    const out = join(tempDir('root-owned'), 'run');
    const r = await cli(['symmetric-vs-cone', '--tries', '1', '--out', out]);
    t.is(r.exitCode, 0, r.all);
    const st = lstatSync(out);
    t.is(st.mode & 0o777, 0o700);
    t.is(st.uid, 0);
  });

  test.serial('a failing run (agent errors, exit 3) hands its folder over too', async (t) => {
    const out = join(tempDir('owned-failed'), 'run');
    const r = await cli(['symmetric-vs-cone', '--tries', '1', '--timeout', '300', '--agent', join(ROOT, 'test/fixtures/agents/crash.mjs'), '--out', out], SUDO);
    t.is(r.exitCode, 3, r.all);
    t.is(lstatSync(out).mode & 0o777, 0o700);
    t.deepEqual(notHandedOver(out), []);
  });

  test.serial('a run ended by SIGINT hands its folder over in the teardown', async (t) => {
    const out = join(tempDir('owned-sigint'), 'run');
    const run = cli(['full-matrix', '--out', out], SUDO);
    await until(() => existsSync(join(out, 'topology.json')), 20_000, 'topology.json');
    const runId = (JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { runId: string }).runId;
    await until(() => processesOfRun(runId).length >= 3, 20_000, 'agents to start');
    run.kill('SIGINT');
    const r = await run;
    t.is(r.exitCode, 130, r.all);
    t.deepEqual(notHandedOver(out), []);
  });
}
