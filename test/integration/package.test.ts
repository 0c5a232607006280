// natmatrix as a package (issue 12, part 1), tried the way a user would: `npm pack`, the tarball
// installed into a fresh project that has its own scenario and its own agent, run there with the
// installed `natmatrix` command. Needs the npm registry for natmatrix's own dependencies.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { needsRoot, processesOfRun, ROOT } from './helpers.ts';
import type { Report } from '../../harness/types.ts';

if (needsRoot(test)) {
  test.serial('the packed tarball installs into a fresh project, whose own scenario and agent run with the natmatrix command', async (t) => {
    t.timeout(240_000);
    const work = mkdtempSync(join(tmpdir(), 'natmatrix-test-package-'));
    chmodSync(work, 0o755); // the project's agent runs as an unprivileged user: its folders must be open
    const packed = await execa('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT });
    const tarball = join(work, packed.stdout.trim().split('\n').at(-1)!);
    t.true(existsSync(tarball), packed.stdout);

    const project = join(work, 'project');
    mkdirSync(join(project, 'scenarios'), { recursive: true });
    mkdirSync(join(project, 'agents'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-p2p-app', private: true, type: 'module' }));
    const installed = await execa('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project, reject: false, all: true });
    t.is(installed.exitCode, 0, installed.all);
    // the project's own agent (a peer in Python) and its own scenario, which uses natmatrix's rendezvous
    copyFileSync(join(ROOT, 'agents/examples/udp_punch_peer.py'), join(project, 'agents/peer.py'));
    chmodSync(join(project, 'agents/peer.py'), 0o755);
    writeFileSync(join(project, 'scenarios/mine.json'), JSON.stringify({
      name: 'mine', description: 'my app through two NATs', a: ['full-cone'], b: ['symmetric', 'port-restricted'], tries: 1,
      agent: { peer: '../agents/peer.py', rendezvous: '../node_modules/natmatrix/agents/udp-punch/rendezvous.ts' },
      expect: { 'full-cone': { symmetric: 'direct', 'port-restricted': 'direct' } },
    }));
    const natmatrix = (args: string[]) => execa(join(project, 'node_modules/.bin/natmatrix'), args, { cwd: project, reject: false, all: true, env: { NO_COLOR: '1', CI: 'true', INIT_CWD: '' } });

    const version = await natmatrix(['--version']);
    t.is(version.stdout, `natmatrix ${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}`);
    // setup in a project: the OS tools are checked, npm ci is not run inside node_modules/natmatrix
    const setup = await natmatrix(['setup']);
    t.is(setup.exitCode, 0, setup.all);
    t.regex(setup.stdout, /installed as a package .*nothing to install/);
    t.false(existsSync(join(project, 'node_modules/natmatrix/node_modules/.package-lock.json')), 'no npm ci in the installed package');
    const list = await natmatrix(['scenario', '--list']);
    t.regex(list.stdout, /^mine\s/m, 'the project\'s own scenario, found from its directory');
    t.regex(list.stdout, /^symmetric-vs-cone\s/m, 'and natmatrix\'s own');

    // a .ts scenario in a project that is not "type": "module" (CommonJS by default) loads as ESM
    const cjs = join(work, 'cjs-project');
    mkdirSync(join(cjs, 'scenarios'), { recursive: true });
    writeFileSync(join(cjs, 'package.json'), JSON.stringify({ name: 'old-style', private: true }));
    symlinkSync(join(project, 'node_modules'), join(cjs, 'node_modules'));
    writeFileSync(join(cjs, 'scenarios/typed.ts'), `import { defineScenario } from 'natmatrix';
const tries: number = 2;
export default defineScenario({ name: 'typed', description: 'a typed scenario', a: ['symmetric'], b: ['full-cone'], tries, expect: { symmetric: { 'full-cone': 'direct' } } });
`);
    const dry = await execa(join(cjs, 'node_modules/.bin/natmatrix'), ['scenario', 'typed', '--dry-run'], { cwd: cjs, reject: false, all: true, env: { NO_COLOR: '1', CI: 'true', INIT_CWD: '' } });
    t.is(dry.exitCode, 0, dry.all);
    t.is((JSON.parse(dry.stdout) as { attempts: unknown[] }).attempts.length, 2);

    const run = await natmatrix(['scenario', 'mine', '--out', 'out']);
    t.is(run.exitCode, 0, run.all);
    const report = JSON.parse(readFileSync(join(project, 'out/report.json'), 'utf8')) as Report;
    t.deepEqual(report.cells.map((c) => `${c.a}×${c.b}:${c.outcome}`), ['full-cone×symmetric:direct', 'full-cone×port-restricted:direct']);
    t.is(report.agents[0]!.privileged, false);
    t.deepEqual(processesOfRun(report.runId), []);

    // an agent of the project's own in TypeScript, written with natmatrix/agent (the README's example)
    mkdirSync(join(project, 'agents/sdk-peer'));
    copyFileSync(join(ROOT, 'test/examples/agent.ts'), join(project, 'agents/sdk-peer/peer.ts'));
    writeFileSync(join(project, 'agents/sdk-peer/natmatrix-agent.json'), JSON.stringify({ peer: 'peer.ts', rendezvous: '../../node_modules/natmatrix/agents/udp-punch/rendezvous.ts' }));
    const sdkRun = await natmatrix(['scenario', 'mine', '--agent', 'agents/sdk-peer', '--out', 'out-sdk']);
    t.is(sdkRun.exitCode, 0, sdkRun.all);
    const sdkReport = JSON.parse(readFileSync(join(project, 'out-sdk/report.json'), 'utf8')) as Report;
    t.deepEqual(sdkReport.cells.map((c) => `${c.a}×${c.b}:${c.outcome}:${c.path}`), ['full-cone×symmetric:direct:direct-udp', 'full-cone×port-restricted:direct:direct-udp']);

    // the installed package carries its harness compiled: the command runs no TypeScript of natmatrix's
    t.true(existsSync(join(project, 'node_modules/natmatrix/dist/harness/cli.js')));
    t.true(existsSync(join(project, 'node_modules/natmatrix/dist/harness/index.d.ts')), 'typed exports');

    // typed exports, as a user's TypeScript sees them: real types (an any would leave the expect-error unused)
    mkdirSync(join(project, 'types'));
    writeFileSync(join(project, 'types/probe.ts'), `import { buildLab, runScenario, type Report } from 'natmatrix';
import { readPeerEnv, type Verdict } from 'natmatrix/agent';
export async function probe(): Promise<number> {
  const r: Report = await runScenario('mine');
  // @ts-expect-error errored is a number
  const s: string = r.summary.errored;
  await using lab = await buildLab({ a: 'symmetric', b: 'full-cone' });
  const v: Verdict = { ok: true, path: 'direct-udp', peer: lab.router('b').wanIp + ':40000' };
  const port: number = readPeerEnv({}).NMX_LOCAL_PORT;
  return [s, v].length + port + r.summary.errored;
}
`);
    writeFileSync(join(project, 'types/tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', lib: ['ES2023', 'ESNext.Disposable'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(ROOT, 'node_modules/@types')], types: ['node'] }, include: ['probe.ts'] }));
    const tsc = await execa(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'types'], { cwd: project, reject: false, all: true });
    t.is(tsc.exitCode, 0, tsc.all);

    // the README's library examples, as a user's tests: ava (TypeScript through tsx) and node:test
    mkdirSync(join(project, 'test'));
    for (const f of ['nat.ava.ts', 'nat.node.ts']) copyFileSync(join(ROOT, 'test/examples', f), join(project, 'test', f));
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(project, 'package.json'), JSON.stringify({ ...pkg, ava: { extensions: { ts: 'module' }, nodeArguments: ['--import=tsx'], workerThreads: false, files: ['test/**/*.ava.ts'] } }, null, 2));
    // ava as the project's own dev dependency would be: natmatrix's copy, linked (no registry needed)
    symlinkSync(join(ROOT, 'node_modules/ava'), join(project, 'node_modules/ava'));
    const env = { NO_COLOR: '1', CI: 'true', INIT_CWD: '' };
    const ava = await execa(process.execPath, [join(project, 'node_modules/ava/entrypoints/cli.mjs'), '--tap'], { cwd: project, reject: false, all: true, env });
    t.is(ava.exitCode, 0, ava.all);
    t.regex(ava.stdout, /^# pass 2$/m, ava.all);
    const nodeTest = await execa(process.execPath, ['--import', 'tsx', '--test', 'test/nat.node.ts'], { cwd: project, reject: false, all: true, env });
    t.is(nodeTest.exitCode, 0, nodeTest.all);
    t.regex(nodeTest.stdout, /^# pass 2$/m, nodeTest.all);
    t.regex(nodeTest.stdout, /^# fail 0$/m);
  });
}
