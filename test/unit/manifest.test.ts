// Agent manifests: the fields an agent declares, resolved into AgentSpecs with the scenario's defaults,
// and every contradiction or unknown key refused with one line naming the field.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test from 'ava';
import { UsageError } from '../../harness/errors.ts';
import { agentFromPath, checkAgentNames, DEFAULT_START_COST_MS, ensureInstalled, parseAgentFields, specOf, splitNamedAgent, type AgentDefaults } from '../../harness/manifest.ts';
import { parseScenario, ROOT } from '../../harness/scenario.ts';

const DEFAULTS: AgentDefaults = { rendezvous: '/opt/rdv.ts', services: ['relay'], strategy: ['direct-udp', 'relayed'] };
const tmp = mkdtempSync(join(tmpdir(), 'nmx-manifest-'));

function manifest(name: string, data: object): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'natmatrix-agent.json');
  writeFileSync(file, JSON.stringify(data));
  return file;
}

test('a bare peer executable takes the scenario\'s rendezvous, services and strategy, and the defaults', (t) => {
  const s = specOf({ peer: 'bin/peer' }, '/srv/agents/mine', '/srv/agents/mine/bin/peer', DEFAULTS);
  t.deepEqual(s.peer, { a: '/srv/agents/mine/bin/peer', b: '/srv/agents/mine/bin/peer' });
  t.is(s.name, 'bin');
  t.is(s.rendezvous, '/opt/rdv.ts');
  t.deepEqual(s.services, ['relay']);
  t.deepEqual(s.strategy, ['direct-udp', 'relayed']);
  t.deepEqual([s.verdict, s.timing, s.rendezvousScope, s.sockets, s.peerCheck, s.startCostMs, s.model], ['both', { mode: 'window' }, 'run', 'one', true, DEFAULT_START_COST_MS, null]);
});

test('a manifest declares everything, paths relative to it; services add to the scenario\'s', (t) => {
  const file = manifest('full', {
    name: 'stack', description: 'a stack', peer: { a: 'client.mjs', b: 'server.mjs' }, rendezvous: 'boot.mjs', rendezvousScope: 'try',
    verdict: 'a', timing: { mode: 'budget', budgetMs: 8000 }, sockets: 'many', startCostMs: 300, services: ['turn'],
    strategy: ['direct-udp'], peerCheck: false, check: ['node', '-e', '0'], install: ['npm', 'ci'], expect: { model: 'udp-punch' },
  });
  const s = agentFromPath(file, DEFAULTS);
  const dir = join(tmp, 'full');
  t.like(s, {
    name: 'stack', description: 'a stack', source: file, dir, peer: { a: join(dir, 'client.mjs'), b: join(dir, 'server.mjs') }, rendezvous: join(dir, 'boot.mjs'),
    rendezvousScope: 'try', verdict: 'a', timing: { mode: 'budget', budgetMs: 8000 }, sockets: 'many', startCostMs: 300, strategy: ['direct-udp'], peerCheck: false,
  });
  t.deepEqual(s.services, ['relay', 'turn']);
  t.deepEqual(s.model, { model: 'udp-punch' });
  t.deepEqual(agentFromPath(dir, DEFAULTS), s, 'a folder holding a manifest stands for it');
  t.is(agentFromPath(file, DEFAULTS, 'renamed').name, 'renamed');
});

test('rendezvous null: an agent without one', (t) => {
  const s = agentFromPath(manifest('none', { peer: 'p.mjs', rendezvous: null }), DEFAULTS);
  t.is(s.rendezvous, null);
});

test('unknown keys and contradictions are refused with one line naming the field', (t) => {
  const bad: Array<[object, RegExp]> = [
    [{ peer: 'p', extra: 1 }, /^malformed agent manifest here: \(top level\): Unrecognized key: "extra"$/],
    [{}, /peer: /],
    [{ peer: 'p', install: ['npm', 'ci'] }, /install: install needs a check command/],
    [{ peer: 'p', rendezvous: null, rendezvousScope: 'try' }, /rendezvousScope: the agent has no rendezvous/],
    [{ peer: 'p', strategy: ['relayed'], services: ['stun'] }, /strategy: a "relayed" step needs a relay/],
    [{ peer: 'p', services: ['turn', 'turn'] }, /services: a service is named twice/],
    [{ peer: 'p', timing: { mode: 'budget', budgetMs: 10 } }, /timing\.budgetMs: /],
    [{ peer: 'p', verdict: 'c' }, /verdict: /],
    [{ peer: 'p', expect: { rules: [{ a: { mapping: 'sideways' }, expect: 'direct' }] } }, /expect\.rules\.0\.a\.mapping: /],
    [{ peer: 'p', expect: { rules: [{ a: { type: 'nat-x' }, expect: 'direct' }] } }, /expect\.rules\.0\.a\.type: unknown NAT type "nat-x"/],
    [{ peer: 'p', expect: { model: 'mine' } }, /expect\.model: /],
  ];
  for (const [raw, why] of bad) {
    const err = t.throws(() => parseAgentFields(raw, 'here'), { instanceOf: UsageError });
    t.regex(err?.message ?? '', why, JSON.stringify(raw));
    t.false((err?.message ?? '').includes('\n'));
  }
});

test('missing manifests, folders without one, and missing executables are usage errors', (t) => {
  t.throws(() => agentFromPath(join(tmp, 'nope.json'), DEFAULTS), { instanceOf: UsageError, message: /cannot read agent manifest .*nope\.json: not found/ });
  const empty = join(tmp, 'empty');
  mkdirSync(empty, { recursive: true });
  t.throws(() => agentFromPath(empty, DEFAULTS), { instanceOf: UsageError, message: /is a folder without a natmatrix-agent\.json/ });
  t.throws(() => agentFromPath(join(tmp, 'no-such-peer'), DEFAULTS), { instanceOf: UsageError, message: /agent not found/ });
});

test('--agent NAME=FILE splits; names must be distinct', (t) => {
  t.deepEqual(splitNamedAgent('ours=agents/x.json'), ['ours', 'agents/x.json']);
  t.deepEqual(splitNamedAgent('agents/x=y.json'), [undefined, 'agents/x=y.json']);
  const one = specOf({ peer: 'p' }, '/a', '/a/p', DEFAULTS, 'same');
  t.throws(() => checkAgentNames([one, { ...one }]), { instanceOf: UsageError, message: /two agents are named "same"/ });
});

test('ensureInstalled: nothing when the check passes; the install runs once when it fails; a failed install is a usage error', (t) => {
  const base = specOf({ peer: 'p' }, tmp, join(tmp, 'p'), DEFAULTS, 'x');
  const said: string[] = [];
  ensureInstalled({ ...base, check: ['true'], install: ['false'] }, (l) => said.push(l));
  t.deepEqual(said, []);
  const marker = join(tmp, 'installed');
  ensureInstalled({ ...base, check: ['test', '-e', marker], install: ['touch', marker] }, (l) => said.push(l));
  t.regex(said[0] ?? '', /^natmatrix: installing agent x: touch .*installed \(in /);
  t.throws(() => ensureInstalled({ ...base, check: ['false'], install: ['false'] }, () => {}), { instanceOf: UsageError, message: /agent x could not be installed: false in .* exited 1/ });
  t.throws(() => ensureInstalled({ ...base, check: ['false'], install: null }, () => {}), { instanceOf: UsageError, message: /agent x is not ready .* and its manifest has no install command/ });
});

test('scenarios name one agent (legacy object, manifest path) or several; agent and agents exclude each other', (t) => {
  const base = { name: 's', description: 'd', a: ['full-cone'], b: ['symmetric'], expect: { 'full-cone': { symmetric: 'direct' } } };
  const legacy = parseScenario({ ...base, agent: { peer: 'p.ts', rendezvous: 'r.ts' } }, '/srv/s.json');
  t.deepEqual([legacy.agents.length, legacy.agents[0]!.peer.a, legacy.agents[0]!.rendezvous], [1, '/srv/p.ts', '/srv/r.ts']);
  const byManifest = parseScenario({ ...base, agent: '../agents/udp-punch/natmatrix-agent.json' }, join(ROOT, 'scenarios/x.json'));
  t.is(byManifest.agents[0]!.name, 'udp-punch');
  t.is(byManifest.agents[0]!.rendezvous, resolve(ROOT, 'agents/udp-punch/rendezvous.ts'));
  const several = parseScenario({ ...base, services: ['stun'], agents: { one: '../agents/udp-punch/natmatrix-agent.json', two: { peer: 'x.mjs', verdict: 'b' } } }, join(ROOT, 'scenarios/x.json'));
  t.deepEqual(several.agents.map((x) => [x.name, x.verdict, x.services.join()]), [['one', 'both', 'stun'], ['two', 'b', 'stun']]);
  t.throws(() => parseScenario({ ...base, agent: 'a.json', agents: { x: 'b.json' } }, '/srv/s.json'), { message: /agents: give either agent or agents, not both/ });
});
