// The harness checks its own NATs: an RFC 5780-style classification of every router must agree with
// the registry, and --verify must refuse a matrix built on a router that lies about itself.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import type { Classification } from '../../harness/classify.ts';
import { cli, explain, isRoot, namespaces, needsRoot, readReport, ROOT, tempDir } from './helpers.ts';

const DECLARED: Record<string, [string, string]> = {
  dmz: ['endpoint-independent', 'endpoint-independent'],
  'full-cone': ['endpoint-independent', 'endpoint-independent'],
  'address-restricted': ['endpoint-independent', 'address-dependent'],
  'port-restricted': ['endpoint-independent', 'address-and-port-dependent'],
  symmetric: ['address-and-port-dependent', 'address-and-port-dependent'],
  'adm-eif': ['address-dependent', 'endpoint-independent'],
  'adm-adf': ['address-dependent', 'address-dependent'],
  'adm-apdf': ['address-dependent', 'address-and-port-dependent'],
  'apdm-eif': ['address-and-port-dependent', 'endpoint-independent'],
  'apdm-adf': ['address-and-port-dependent', 'address-dependent'],
  'dmz-host': ['endpoint-independent', 'endpoint-independent'],
};

if (needsRoot(test)) {
  test.serial('npm run classify: all nine RFC 4787 combinations, DMZ and DMZ host measure as declared', async (t) => {
    const before = await namespaces();
    const r = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/classify-cli.ts'), '--json'], { reject: false, cwd: ROOT });
    t.is(r.exitCode, 0, r.stderr);
    const results = JSON.parse(r.stdout) as Classification[];
    t.deepEqual(results.map((x) => x.nat), Object.keys(DECLARED));
    for (const x of results) {
      t.deepEqual([x.measured.mapping, x.measured.filtering], DECLARED[x.nat], x.nat);
      t.true(x.matches);
    }
    // symmetric NAT gave the three probes three different external ports; full cone one
    const sym = results.find((x) => x.nat === 'symmetric')!;
    t.is(new Set(sym.mapped.mapping.map((m) => m.split(':')[1])).size, 3);
    const fc = results.find((x) => x.nat === 'full-cone')!;
    t.is(new Set(fc.mapped.mapping).size, 1);
    // address-dependent mapping: one port for both ports of the second address, another for the first
    const adm = results.find((x) => x.nat === 'adm-apdf')!.mapped.mapping;
    t.true(adm[0] !== adm[1] && adm[1] === adm[2], adm.join(' '));
    t.regex(r.stderr, /symmetric\s+APD \/ APD, no\s+APD \/ APD, no\s+no \(random\)\s+120 s \(configured\)\s+✓/);
    t.deepEqual(await namespaces(), before);
  });

  test.serial('--verify passes real routers and records the classification', async (t) => {
    const out = tempDir('verify-ok');
    const r = await cli(['symmetric-vs-cone', '--tries', '1', '--verify', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    t.regex(r.stdout, /verified: symmetric, full-cone, address-restricted, port-restricted behave as declared/);
    const results = JSON.parse(readFileSync(join(out, 'classify.json'), 'utf8')) as Classification[];
    t.is(results.length, 4);
    t.true(results.every((x) => x.matches));
  });

  test.serial('--verify refuses a matrix on a deliberately mislabelled router: exit 2, no report', async (t) => {
    // a template folder where endpoint-independent behaviour is really symmetric: "full-cone" lies
    const nft = tempDir('lying-nft');
    for (const f of readdirSync(join(ROOT, 'nft'))) copyFileSync(join(ROOT, 'nft', f), join(nft, f));
    copyFileSync(join(ROOT, 'nft/mapping-address-and-port-dependent.nft'), join(nft, 'mapping-endpoint-independent.nft'));
    copyFileSync(join(ROOT, 'nft/filtering-address-and-port-dependent.nft'), join(nft, 'filtering-endpoint-independent.nft'));
    const out = join(tempDir('verify-bad'), 'run');
    mkdirSync(out);
    const before = await namespaces();
    const r = await cli(['symmetric-vs-cone', '--verify', '--out', out], { NMX_NFT_DIR: nft });
    t.is(r.exitCode, 2, r.all);
    t.is(r.stderr.trim().split('\n').length, 1);
    t.regex(r.stderr, /--verify: full-cone is declared endpoint-independent mapping \/ endpoint-independent filtering \/ port-preserving but measured address-and-port-dependent \/ address-and-port-dependent; /);
    t.regex(r.stderr, /; port-restricted is declared .* but measured address-and-port-dependent \/ address-and-port-dependent; refusing to report a matrix/);
    t.notRegex(r.stderr, /symmetric is declared/, 'the router that tells the truth is not accused');
    t.false(existsSync(join(out, 'report.json')));
    t.deepEqual(await namespaces(), before);
  });
}

if (isRoot) {
  test.serial('a double NAT measures as its stricter layer, and single NATs behind a forwarding home router as themselves', async (t) => {
    const types = ['full-cone+symmetric', 'symmetric+full-cone', 'full-cone+port-restricted', 'address-restricted+full-cone', 'full-cone'];
    const r = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/classify-cli.ts'), '--json', ...types], { reject: false, cwd: ROOT });
    t.is(r.exitCode, 0, r.stderr);
    const results = JSON.parse(r.stdout) as Classification[];
    const measured = Object.fromEntries(results.map((x) => [x.nat, `${x.measured.mapping}/${x.measured.filtering}`]));
    t.deepEqual(measured, {
      'full-cone+symmetric': 'address-and-port-dependent/address-and-port-dependent',
      'symmetric+full-cone': 'address-and-port-dependent/address-and-port-dependent',
      'full-cone+port-restricted': 'endpoint-independent/address-and-port-dependent',
      'address-restricted+full-cone': 'endpoint-independent/address-dependent',
      'full-cone': 'endpoint-independent/endpoint-independent',
    });
  });

  test.serial('cgnat: home routers behind carrier-grade NATs punch as the model says, verified first', async (t) => {
    const out = tempDir('cgnat');
    const r = await cli(['cgnat', '--verify', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    t.regex(r.stdout, /verified: .*full-cone\+symmetric.* behave as declared/);
    const report = readReport(out);
    t.is(report.summary.matched, 15);
    const cell = (a: string, b: string) => report.cells.find((c) => c.a === a && c.b === b)!;
    t.is(cell('full-cone+full-cone', 'symmetric').outcome, 'direct');
    t.is(cell('full-cone+symmetric', 'port-restricted').outcome, 'failed', 'the carrier layer decides');
    t.is(cell('port-restricted+full-cone', 'symmetric').outcome, 'failed', 'the home layer decides');
    const topo = JSON.parse(readFileSync(join(out, 'topology.json'), 'utf8')) as { lanes: Array<{ a: { homeRouter?: { namespace: string } } }> };
    t.truthy(topo.lanes[0]?.a.homeRouter, 'topology.json shows the home routers');
  });
}

if (isRoot) {
  test.serial('classify measures hairpinning and port preservation: each only where a type asks for it', async (t) => {
    const types = ['port-restricted', 'port-restricted:hairpin', 'symmetric:hairpin', 'full-cone:hairpin:lifetime=5', 'full-cone:ports=random'];
    const r = await execa(process.execPath, ['--import', 'tsx', join(ROOT, 'harness/classify-cli.ts'), '--json', ...types], { reject: false, cwd: ROOT });
    t.is(r.exitCode, 0, r.stderr);
    const results = JSON.parse(r.stdout) as Classification[];
    t.deepEqual(results.map((x) => [x.nat, x.measured.hairpinning]), types.map((n) => [n, n.includes(':hairpin')]));
    t.is(results.find((x) => x.nat === 'full-cone:hairpin:lifetime=5')!.declared.lifetimeS, 5);
    // port allocation: preserved by default, not with ":ports=random", endpoint-independent either way
    const random = results.find((x) => x.nat === 'full-cone:ports=random')!;
    t.deepEqual([random.measured.mapping, random.measured.portPreserved, random.matches], ['endpoint-independent', false, true]);
    t.true(results.find((x) => x.nat === 'port-restricted')!.measured.portPreserved);
  });
}
