import { PATHS } from '../../harness/types.ts';
// Scenario schema (parseScenario), the shipped scenarios, and finding/loading scenario files.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  DEFAULT_AGENT,
  ROOT,
  UsageError,
  expectedOf,
  listScenarios,
  loadScenario,
  parseScenario,
  type Scenario,
  type ScenarioInput,
} from '../../harness/scenario.ts';

const KNOWN = 'dmz, full-cone (eim-eif), address-restricted (eim-adf), port-restricted (eim-apdf), symmetric (apdm-apdf), adm-eif, adm-adf, adm-apdf, apdm-eif, apdm-adf, dmz-host, cloud-eip';
const FILE = '/tmp/x.ts';

const base = (): ScenarioInput => ({
  name: 'unit',
  description: 'unit test scenario',
  a: ['symmetric'],
  b: ['full-cone', 'port-restricted'],
  expect: { symmetric: { 'full-cone': 'direct', 'port-restricted': 'failed' } },
});

/** parseScenario must throw a UsageError; returns its message. */
function rejects(t: import('ava').ExecutionContext, raw: unknown): string {
  const err = t.throws(() => parseScenario(raw, FILE), { instanceOf: UsageError });
  t.true(err?.message.startsWith(`malformed scenario ${FILE}: `), err?.message);
  return err?.message ?? '';
}

let tmp = '';
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmx-scenario-test-'));
});
test.after.always(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The one agent of a scenario, as peer and rendezvous files (the shape scenarios spell it in). */
function agentOf(s: Scenario): { peer: string; rendezvous: string | null; serve: boolean } {
  t_one(s);
  const x = s.agents[0]!;
  return { peer: x.peer.a, rendezvous: x.rendezvous, serve: x.serve };
}
function t_one(s: Scenario): void {
  if (s.agents.length !== 1) throw new Error(`${s.name} has ${s.agents.length} agents`);
}

// ---------------------------------------------------------------------------------------------
// shipped scenarios

test('the shipped scenarios are listed by name', (t) => {
  const names = listScenarios();
  for (const n of ['cone-vs-cone', 'dmz', 'full-matrix', 'symmetric-vs-cone']) t.true(names.includes(n), n);
  t.deepEqual(names, [...names].sort());
  for (const n of names) t.false(n.endsWith('.ts'), n);
});

test('every shipped scenario loads and validates', async (t) => {
  const names = listScenarios();
  t.true(names.length >= 4);
  for (const name of names) {
    const s = await loadScenario(name);
    t.is(s.name, name, `${name}: the name field matches the file name`);
    t.is(s.file, resolve(ROOT, 'scenarios', `${name}.ts`));
    t.true(s.tries >= 1);
    t.true(s.timeoutMs >= 50);
    t.true(s.description.length > 0);
    const allowed = ['direct', 'relayed', 'failed', ...PATHS];
    for (const agent of s.agents) {
      for (const a of s.a) {
        for (const b of s.b) {
          const e = expectedOf(s, a, b, agent);
          t.true(typeof e === 'object' && e !== null ? e.atLeast > 0 : allowed.includes(e as string), `${name}/${agent.name}: ${a} × ${b}`);
        }
      }
    }
  }
});

test('full-matrix: exactly SYM×SYM, SYM×PR and PR×SYM fail, the other 22 cells are direct', async (t) => {
  const s = await loadScenario('full-matrix');
  const types = ['dmz', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'];
  t.deepEqual(s.a, types);
  t.deepEqual(s.b, types);
  const failed: string[] = [];
  let direct = 0;
  for (const a of s.a) {
    for (const b of s.b) {
      if (expectedOf(s, a, b) === 'failed') failed.push(`${a}×${b}`);
      else direct++;
    }
  }
  t.deepEqual(failed.sort(), ['port-restricted×symmetric', 'symmetric×port-restricted', 'symmetric×symmetric']);
  t.is(direct, 22);
});

test('symmetric-vs-cone: 1×3, expected direct, direct, failed', async (t) => {
  const s = await loadScenario('symmetric-vs-cone');
  t.deepEqual(s.a, ['symmetric']);
  t.deepEqual(s.b, ['full-cone', 'address-restricted', 'port-restricted']);
  t.deepEqual(s.b.map((b) => expectedOf(s, 'symmetric', b)), ['direct', 'direct', 'failed']);
});

test('shipped scenarios use the default agent', async (t) => {
  const s = await loadScenario('cone-vs-cone');
  t.deepEqual(agentOf(s), DEFAULT_AGENT);
  t.is(DEFAULT_AGENT.peer, resolve(ROOT, 'agents/udp-punch/peer.ts'));
  t.is(DEFAULT_AGENT.rendezvous, resolve(ROOT, 'agents/udp-punch/rendezvous.ts'));
});

// ---------------------------------------------------------------------------------------------
// parseScenario: accepted input

test('a minimal scenario gets the defaults: tries 1, timeoutMs 1000, default agent', (t) => {
  const s = parseScenario(base(), FILE);
  t.is(s.tries, 1);
  t.is(s.timeoutMs, 1000);
  t.is(s.file, FILE);
  t.deepEqual(agentOf(s), DEFAULT_AGENT);
  t.is(expectedOf(s, 'symmetric', 'port-restricted'), 'failed');
});

test('given tries and timeoutMs are kept', (t) => {
  const s = parseScenario({ ...base(), tries: 7, timeoutMs: 250 }, FILE);
  t.is(s.tries, 7);
  t.is(s.timeoutMs, 250);
});

test('agent paths resolve relative to the scenario file folder', (t) => {
  const s = parseScenario({ ...base(), agent: { peer: './bin/peer.ts', rendezvous: '../shared/rdv.mjs' } }, '/srv/lab/scenarios/x.ts');
  t.deepEqual(agentOf(s), { peer: '/srv/lab/scenarios/bin/peer.ts', rendezvous: '/srv/lab/shared/rdv.mjs', serve: false });
  const abs = parseScenario({ ...base(), agent: { peer: '/opt/p.js', rendezvous: 'r.js' } }, '/srv/y.json');
  t.deepEqual(agentOf(abs), { peer: '/opt/p.js', rendezvous: '/srv/r.js', serve: false });
  const served = parseScenario({ ...base(), agent: { peer: '/opt/p.js', rendezvous: 'r.js', serve: true } }, '/srv/y.json');
  t.deepEqual(agentOf(served), { peer: '/opt/p.js', rendezvous: '/srv/r.js', serve: true });
  t.throws(() => parseScenario({ ...base(), agent: { peer: '/opt/p.js', rendezvous: 'r.js', serve: 'yes' } }, '/srv/y.json'), { message: /agent/ });
});

test('aliases and any letter case are accepted as NAT names', (t) => {
  const s = parseScenario(
    { name: 'alias', description: 'd', a: ['sym'], b: ['Full-Cone', 'restricted-cone'], expect: { sym: { 'Full-Cone': 'direct', 'restricted-cone': 'direct' } } },
    FILE,
  );
  t.deepEqual(s.a, ['sym']);
  t.is(expectedOf(s, 'sym', 'restricted-cone'), 'direct');
});

test('expectedOf throws for a pairing outside the scenario', (t) => {
  const s = parseScenario(base(), FILE);
  t.throws(() => expectedOf(s, 'dmz', 'dmz'), { message: /dmz × dmz/ });
});

// ---------------------------------------------------------------------------------------------
// parseScenario: rejected input, each naming the field and the problem

test('rejects an unknown NAT type, listing the known ones', (t) => {
  const msg = rejects(t, { ...base(), a: ['nat-x'], expect: { 'nat-x': { 'full-cone': 'direct', 'port-restricted': 'direct' } } });
  t.true(msg.includes(`a.0: unknown NAT type "nat-x" (known: ${KNOWN})`), msg);
});

test('rejects an unknown NAT type on side B at its index', (t) => {
  const msg = rejects(t, { ...base(), b: ['full-cone', 'cone'] });
  t.true(msg.includes('b.1: unknown NAT type "cone"'), msg);
  t.true(msg.includes(KNOWN), msg);
});

test('rejects a missing expectation, naming the pairing', (t) => {
  const msg = rejects(t, { ...base(), expect: { symmetric: { 'full-cone': 'direct' } } });
  t.true(msg.includes('expect.symmetric: no expected outcome for symmetric × port-restricted'), msg);
  t.true(msg.includes('expect["symmetric"]["port-restricted"]'), msg);
});

test('rejects a missing expectation row, naming every missing pairing', (t) => {
  const msg = rejects(t, { ...base(), a: ['symmetric', 'dmz'] });
  t.true(msg.includes('no expected outcome for dmz × full-cone'), msg);
  t.true(msg.includes('no expected outcome for dmz × port-restricted'), msg);
  t.false(msg.includes('symmetric × '), msg);
});

test('rejects an expectation for a type not on side A', (t) => {
  const raw = base();
  const msg = rejects(t, { ...raw, expect: { ...raw.expect, dmz: { 'full-cone': 'direct' } } });
  t.true(msg.includes('expect.dmz: "dmz" is not on side A (symmetric)'), msg);
});

test('rejects an expectation for a type not on side B', (t) => {
  const msg = rejects(t, { ...base(), expect: { symmetric: { 'full-cone': 'direct', 'port-restricted': 'failed', dmz: 'direct' } } });
  t.true(msg.includes('expect.symmetric.dmz: "dmz" is not on side B (full-cone, port-restricted)'), msg);
});

test('rejects an expectation that is neither direct nor failed', (t) => {
  const msg = rejects(t, { ...base(), expect: { symmetric: { 'full-cone': 'direct', 'port-restricted': 'maybe' } } });
  t.true(msg.includes('expect.symmetric.port-restricted:'), msg);
  t.regex(msg, /"direct"\|"relayed"\|"failed"\|"direct-udp"/);
});

test('rejects a duplicate type on a side', (t) => {
  const msg = rejects(t, { ...base(), a: ['symmetric', 'symmetric'] });
  t.true(msg.includes('a.1: "symmetric" appears twice on side A'), msg);
});

test('rejects a duplicate type on a side given through an alias', (t) => {
  const msg = rejects(t, {
    ...base(),
    b: ['full-cone', 'port-restricted', 'FC'],
    expect: { symmetric: { 'full-cone': 'direct', 'port-restricted': 'failed', FC: 'direct' } },
  });
  t.true(msg.includes('b.2: "FC" appears twice on side B'), msg);
});

test('rejects an unknown top-level key (strict)', (t) => {
  const msg = rejects(t, { ...base(), retries: 3 });
  t.true(msg.includes('(top level): '), msg);
  t.true(msg.includes('Unrecognized key'), msg);
  t.true(msg.includes('"retries"'), msg);
});

test('rejects an unknown key in agent (strict)', (t) => {
  const msg = rejects(t, { ...base(), agent: { peer: 'p.ts', rendezvous: 'r.ts', relay: 'x.ts' } });
  t.true(msg.includes('agent'), msg);
  t.true(msg.includes('"relay"'), msg);
});

test('rejects an agent without a rendezvous', (t) => {
  const msg = rejects(t, { ...base(), agent: { peer: 'p.ts' } });
  t.true(msg.includes('agent.rendezvous: '), msg);
});

test('rejects tries 0', (t) => {
  const msg = rejects(t, { ...base(), tries: 0 });
  t.true(msg.includes('tries: '), msg);
  t.regex(msg, />=1/);
});

test('rejects a non-integer timeout', (t) => {
  const msg = rejects(t, { ...base(), timeoutMs: 1.5 });
  t.true(msg.includes('timeoutMs: '), msg);
  t.regex(msg, /int/);
});

test('rejects a timeout below 50 ms', (t) => {
  const msg = rejects(t, { ...base(), timeoutMs: 10 });
  t.true(msg.includes('timeoutMs: '), msg);
  t.regex(msg, />=50/);
});

test('rejects a bad name', (t) => {
  for (const name of ['Bad Name', 'UPPER', '-leading-dash', 'under_score', '']) {
    const msg = rejects(t, { ...base(), name });
    t.true(msg.includes('name: use lower-case letters, digits and dashes'), `${JSON.stringify(name)}: ${msg}`);
  }
});

test('rejects an empty side', (t) => {
  const msg = rejects(t, { ...base(), a: [], expect: {} });
  t.true(msg.includes('a: side A needs at least one NAT type'), msg);
});

test('rejects a missing description', (t) => {
  const { description: _, ...raw } = base();
  const msg = rejects(t, raw);
  t.true(msg.includes('description: '), msg);
});

test('rejects non-object input', (t) => {
  for (const raw of [null, undefined, 42, 'full-matrix', []]) {
    const msg = rejects(t, raw);
    t.true(msg.includes('(top level): '), msg);
  }
});

test('several problems are all reported, separated by "; "', (t) => {
  const msg = rejects(t, { ...base(), tries: 0, timeoutMs: 1.5, name: 'X' });
  t.true(msg.includes('tries: '), msg);
  t.true(msg.includes('timeoutMs: '), msg);
  t.true(msg.includes('name: '), msg);
  t.is(msg.split('; ').length, 3, msg);
});

// ---------------------------------------------------------------------------------------------
// loadScenario

test('loadScenario("nope") throws UsageError listing the known scenarios', async (t) => {
  const err = await t.throwsAsync(loadScenario('nope'), { instanceOf: UsageError });
  t.true(err?.message.includes('unknown scenario "nope"'), err?.message);
  t.true(err?.message.includes(`known: ${listScenarios().join(', ')}`), err?.message);
});

test('loadScenario with a path to a missing file throws UsageError naming the file', async (t) => {
  const missing = join(tmp, 'does-not-exist.ts');
  const err = await t.throwsAsync(loadScenario(missing), { instanceOf: UsageError });
  t.is(err?.message, `scenario file not found: ${missing}`);
  const rel = await t.throwsAsync(loadScenario('missing.json'), { instanceOf: UsageError });
  t.is(rel?.message, `scenario file not found: ${resolve(process.cwd(), 'missing.json')}`);
});

test('loadScenario: a file with no default export throws UsageError', async (t) => {
  const file = join(tmp, 'no-default.mjs');
  await writeFile(file, 'export const scenario = { name: "x" };\n');
  const err = await t.throwsAsync(loadScenario(file), { instanceOf: UsageError });
  t.true(err?.message.includes(`scenario ${file} has no default export`), err?.message);
});

test('loadScenario: a .ts file with no default export throws UsageError', async (t) => {
  const file = join(tmp, 'no-default.ts');
  await writeFile(file, 'export const scenario: { name: string } = { name: "x" };\n');
  const err = await t.throwsAsync(loadScenario(file), { instanceOf: UsageError });
  t.true(err?.message.includes('has no default export'), err?.message);
});

test('loadScenario: a file that fails to import throws UsageError with the first line of the cause', async (t) => {
  const file = join(tmp, 'broken.mjs');
  await writeFile(file, 'throw new Error("boom at import\\nsecond line");\n');
  const err = await t.throwsAsync(loadScenario(file), { instanceOf: UsageError });
  t.is(err?.message, `cannot load scenario ${file}: boom at import`);
  t.truthy(err?.cause);
});

test('loadScenario: a .ts file with a plain default export loads, agent paths relative to it', async (t) => {
  const file = join(tmp, 'plain.ts');
  const data = { ...base(), name: 'plain', tries: 2, agent: { peer: './agent/peer.ts', rendezvous: 'agent/rdv.ts' } };
  await writeFile(file, `const s: Record<string, unknown> = ${JSON.stringify(data)};\nexport default s;\n`);
  const s = await loadScenario(file);
  t.is(s.name, 'plain');
  t.is(s.file, file);
  t.is(s.tries, 2);
  t.is(s.timeoutMs, 1000);
  t.deepEqual(agentOf(s), { peer: join(tmp, 'agent/peer.ts'), rendezvous: join(tmp, 'agent/rdv.ts'), serve: false });
});

test('loadScenario: a .json file loads and is validated', async (t) => {
  const good = join(tmp, 'good.json');
  await writeFile(good, JSON.stringify({ ...base(), name: 'from-json', timeoutMs: 300 }));
  const s = await loadScenario(good);
  t.is(s.name, 'from-json');
  t.is(s.timeoutMs, 300);
  t.deepEqual(agentOf(s), DEFAULT_AGENT);

  const bad = join(tmp, 'bad.json');
  await writeFile(bad, JSON.stringify({ ...base(), a: ['nat-x'] }));
  const err = await t.throwsAsync(loadScenario(bad), { instanceOf: UsageError });
  t.true(err?.message.includes(`malformed scenario ${bad}: a.0: unknown NAT type "nat-x"`), err?.message);
});

// issue 11, defect 5: scenario loading keeps what the user needs to fix it

const SYNTAX_ERROR = `export default {\n  name: 'x',\n  description: 'y',\n  a: ['symmetric'\n  b: ['full-cone'],\n};\n`;

test('loadScenario: a syntax error in a .ts file names file:line:column on one line', async (t) => {
  const file = join(tmp, 'syntax.ts');
  await writeFile(file, SYNTAX_ERROR);
  const err = await t.throwsAsync(loadScenario(file), { instanceOf: UsageError });
  const msg = err?.message ?? '';
  t.false(msg.includes('\n'), msg);
  t.true(msg.startsWith(`cannot load scenario ${file}: `), msg);
  t.true(msg.includes(`${file}:5:2`), msg);
  t.true(msg.includes('Expected "]" but found "b"'), msg);
});

test('loadScenario: a syntax error in a .mjs file (parsed by Node, not esbuild) names file:line:column too', async (t) => {
  const file = join(tmp, 'syntax.mjs');
  await writeFile(file, SYNTAX_ERROR);
  const err = await t.throwsAsync(loadScenario(file), { instanceOf: UsageError });
  const msg = err?.message ?? '';
  t.false(msg.includes('\n'), msg);
  t.regex(msg, new RegExp(`${file.replace(/[.]/g, '\\.')}:5:\\d+`), msg);
});

test('loadScenario: a syntax error in a .json file names file:line:column', async (t) => {
  const file = join(tmp, 'syntax.json');
  await writeFile(file, '{"name": "x",\n  "a": [1,,]\n}\n');
  const err = await t.throwsAsync(loadScenario(file), { instanceOf: UsageError });
  const msg = err?.message ?? '';
  t.false(msg.includes('\n'), msg);
  t.regex(msg, new RegExp(`${file.replace(/[.]/g, '\\.')}:2:\\d+`), msg);
});

test('loadScenario: a module whose top-level await never settles is a UsageError, not a silent hang or exit', async (t) => {
  const file = resolve(ROOT, 'test/fixtures/scenarios/never-loads.ts');
  // ava's worker would notice the empty event loop first: hold it open, so the load timeout is what ends
  // the wait here (the CLI test covers the event loop running empty)
  const hold = setInterval(() => {}, 1000);
  const err = await t.throwsAsync(loadScenario(file, { loadTimeoutMs: 300 }), { instanceOf: UsageError }).finally(() => clearInterval(hold));
  t.regex(err?.message ?? '', /^scenario \S+never-loads\.ts never finished loading/);
  t.false(err?.message.includes('\n'), err?.message);
});

test('rejects an expect row named __proto__ (an own key, as JSON.parse makes it)', (t) => {
  const raw = JSON.parse('{"name":"p","description":"d","a":["symmetric"],"b":["full-cone"],"expect":{"symmetric":{"full-cone":"direct"},"__proto__":{"full-cone":"failed"}}}') as unknown;
  const msg = rejects(t, raw);
  t.true(msg.includes('expect.__proto__:'), msg);
});

test('rejects an expect row named __proto__ in an object literal (which sets the prototype instead)', (t) => {
  const msg = rejects(t, { ...base(), expect: { symmetric: { 'full-cone': 'direct', 'port-restricted': 'failed' }, __proto__: { 'full-cone': 'failed' } } });
  t.true(msg.includes('expect.__proto__:'), msg);
});

test('rejects an expect column named __proto__', (t) => {
  const raw = JSON.parse('{"name":"p","description":"d","a":["symmetric"],"b":["full-cone"],"expect":{"symmetric":{"full-cone":"direct","__proto__":"failed"}}}') as unknown;
  const msg = rejects(t, raw);
  t.true(msg.includes('expect.symmetric.__proto__:'), msg);
});

test('rejects an agent named __proto__', (t) => {
  const raw = JSON.parse('{"name":"p","description":"d","a":["symmetric"],"b":["full-cone"],"agents":{"__proto__":"x.json"}}') as unknown;
  const msg = rejects(t, raw);
  t.true(msg.includes('agents.__proto__:'), msg);
});
