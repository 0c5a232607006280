// Expectation models as data: ordered rules over RFC 4787 behaviours and type names.
import test from 'ava';
import { expectationText, expectedByRules, expectationModelSchema, type Rule } from '../../harness/expect.ts';
import { findNat } from '../../harness/nat.ts';
import { expectedOf, parseScenario } from '../../harness/scenario.ts';
import { specOf } from '../../harness/manifest.ts';

const nat = (n: string) => findNat(n)!;
const rules = (raw: unknown): Rule[] => (expectationModelSchema.parse({ rules: raw }) as { rules: Rule[] }).rules;

test('the first matching rule wins, in either order unless symmetric is false; a rule without sides is a default', (t) => {
  const r = rules([
    { a: { mapping: 'address-and-port-dependent' }, b: { mapping: 'address-and-port-dependent' }, expect: 'failed' },
    { a: { mapping: 'address-and-port-dependent' }, b: { filtering: 'address-and-port-dependent' }, expect: { atLeast: 0.5 } },
    { a: { type: 'dmz' }, b: { type: 'full-cone' }, symmetric: false, expect: 'relayed' },
    { expect: 'direct' },
  ]);
  t.is(expectedByRules(r, nat('symmetric'), nat('symmetric')), 'failed');
  t.deepEqual(expectedByRules(r, nat('symmetric'), nat('port-restricted')), { atLeast: 0.5 });
  t.deepEqual(expectedByRules(r, nat('port-restricted'), nat('symmetric')), { atLeast: 0.5 }, 'symmetric by default');
  t.is(expectedByRules(r, nat('dmz'), nat('full-cone')), 'relayed');
  t.is(expectedByRules(r, nat('full-cone'), nat('dmz')), 'direct', 'symmetric: false matches one order only');
  t.is(expectedByRules(r, nat('symmetric:hairpin'), nat('full-cone')), 'direct');
});

test('type names match through aliases and ignore knobs; double NATs match their composed behaviour', (t) => {
  const r = rules([{ a: { type: ['sym', 'dmz-host'] }, expect: 'failed' }]);
  t.is(expectedByRules(r, nat('symmetric:lifetime=30'), nat('full-cone')), 'failed');
  t.is(expectedByRules(r, nat('dmz-host'), nat('full-cone')), 'failed');
  t.is(expectedByRules(r, nat('full-cone'), nat('full-cone')), undefined, 'no rule, no answer');
  const composed = rules([{ a: { mapping: 'address-and-port-dependent' }, expect: 'failed' }, { expect: 'direct' }]);
  t.is(expectedByRules(composed, nat('full-cone+symmetric'), nat('full-cone')), 'failed');
});

test('an agent\'s model decides its cells over the scenario\'s table; no rule for a cell is a usage error', (t) => {
  const s = parseScenario({ name: 's', description: 'd', a: ['symmetric'], b: ['full-cone', 'symmetric'], expect: { symmetric: { 'full-cone': 'failed', symmetric: 'failed' } } }, '/tmp/s.json');
  const agent = specOf({ peer: 'p', expect: { rules: rules([{ b: { type: 'full-cone' }, expect: 'direct' }]) } }, '/tmp', '/tmp/p', s.agentDefaults, 'theirs');
  t.is(expectedOf(s, 'symmetric', 'full-cone', agent), 'direct');
  t.is(expectedOf(s, 'symmetric', 'full-cone'), 'failed', 'without the agent: the scenario\'s word');
  t.throws(() => expectedOf(s, 'symmetric', 'symmetric', agent), { message: /agent theirs's expectation model has no rule for symmetric × symmetric/ });
  t.is(expectedOf(s, 'symmetric', 'symmetric', agent, true), null, 'observe-only');
});

test('expectationText', (t) => {
  t.is(expectationText('direct-tcp'), 'direct-tcp');
  t.is(expectationText({ atLeast: 0.25 }), '≥ 25 %');
  t.is(expectationText({ atLeast: 0.5, path: 'relayed' }), '≥ 50 % relayed');
  t.is(expectationText(null), 'observe');
});

test('a side may list behaviours (any matches), and a rule may carry a note', (t) => {
  const r = rules([{ a: { mapping: ['address-dependent', 'address-and-port-dependent'] }, b: { mapping: ['address-dependent', 'address-and-port-dependent'] }, expect: 'failed', note: 'both random: refused by design' }, { expect: 'direct' }]);
  t.is(expectedByRules(r, nat('adm-eif'), nat('symmetric')), 'failed');
  t.is(expectedByRules(r, nat('full-cone'), nat('symmetric')), 'direct');
});

test('a type with knobs matches only that exact type; noUdp matches routers that drop UDP', (t) => {
  const r = rules([{ a: { type: 'port-restricted:no-udp' }, expect: 'relayed' }, { a: { noUdp: true }, expect: 'failed' }, { expect: 'direct' }]);
  t.is(expectedByRules(r, nat('port-restricted:no-udp'), nat('full-cone')), 'relayed');
  t.is(expectedByRules(r, nat('port-restricted'), nat('full-cone')), 'direct', 'the plain type is another one');
  t.is(expectedByRules(r, nat('symmetric:no-udp'), nat('full-cone')), 'failed');
});
