import test from 'ava';
import { expectedByModel } from '../../harness/model.ts';
import { CLASSIC_TYPES, findNat } from '../../harness/nat.ts';
import { parseScenario, expectedOf } from '../../harness/scenario.ts';

const nat = (n: string) => findNat(n)!;
const TEXTBOOK_FAILS = new Set(['symmetric|symmetric', 'symmetric|port-restricted', 'port-restricted|symmetric']);

test('the model reproduces the textbook 5 × 5 matrix', (t) => {
  for (const a of CLASSIC_TYPES) {
    for (const b of CLASSIC_TYPES) {
      t.is(expectedByModel('udp-punch', nat(a), nat(b)), TEXTBOOK_FAILS.has(`${a}|${b}`) ? 'failed' : 'direct', `${a} × ${b}`);
    }
  }
});

test('the model is symmetric in its two sides', (t) => {
  const grid = ['ei', 'ad', 'apd'].flatMap((m) => ['ei', 'ad', 'apd'].map((f) => `${m}m-${f}f`));
  for (const a of grid) for (const b of grid) t.is(expectedByModel('udp-punch', nat(a), nat(b)), expectedByModel('udp-punch', nat(b), nat(a)), `${a} × ${b}`);
});

test('address-dependent mapping: fails against address filtering on both sides, passes against EIF', (t) => {
  t.is(expectedByModel('udp-punch', nat('adm-adf'), nat('adm-adf')), 'failed');
  t.is(expectedByModel('udp-punch', nat('adm-apdf'), nat('port-restricted')), 'failed');
  // the answer rides the ping's own conntrack entry, so APDF on the pinging side does not matter
  t.is(expectedByModel('udp-punch', nat('adm-apdf'), nat('adm-eif')), 'direct');
  t.is(expectedByModel('udp-punch', nat('symmetric'), nat('apdm-eif')), 'direct');
});

test('expectModel fills what expect leaves out; expect still overrides a cell', (t) => {
  const s = parseScenario(
    { name: 'm', description: 'd', a: ['symmetric'], b: ['full-cone', 'port-restricted'], expectModel: 'udp-punch', expect: { symmetric: { 'full-cone': 'failed' } } },
    '/tmp/m.ts',
  );
  t.is(expectedOf(s, 'symmetric', 'full-cone'), 'failed', 'the scenario overrides the model');
  t.is(expectedOf(s, 'symmetric', 'port-restricted'), 'failed', 'from the model');
  const err = t.throws(() => parseScenario({ name: 'm', description: 'd', a: ['symmetric'], b: ['full-cone'] }, '/tmp/m.ts'));
  t.regex(err?.message ?? '', /no expected outcome for symmetric × full-cone .*or an expectModel/);
});

test('same-site: the model expects a direct path exactly when the NAT hairpins', (t) => {
  const s = parseScenario(
    { name: 'h', description: 'd', a: ['port-restricted', 'port-restricted:hairpin', 'symmetric:hairpin'], b: ['same-site'], expectModel: 'udp-punch' },
    '/tmp/h.ts',
  );
  t.is(expectedOf(s, 'port-restricted', 'same-site'), 'failed');
  t.is(expectedOf(s, 'port-restricted:hairpin', 'same-site'), 'direct');
  t.is(expectedOf(s, 'symmetric:hairpin', 'same-site'), 'direct');
  const err = t.throws(() => parseScenario({ name: 'h', description: 'd', a: ['same-site'], b: ['full-cone'], expectModel: 'udp-punch' }, '/tmp/h.ts'));
  t.regex(err?.message ?? '', /a\.0: "same-site" is a column \(side B\)/);
});

test('fallback model: UDP where it punches, TCP where both map endpoint-independently, else the relay', (t) => {
  const fb = (a: string, b: string) => expectedByModel('fallback', nat(a), nat(b));
  t.is(fb('full-cone', 'symmetric'), 'direct-udp');
  t.is(fb('port-restricted', 'symmetric'), 'relayed', 'UDP fails and a symmetric NAT defeats TCP simultaneous open');
  t.is(fb('symmetric', 'symmetric'), 'relayed');
  t.is(fb('port-restricted:no-udp', 'port-restricted'), 'direct-tcp', 'no UDP at all: TCP rescues the cones');
  t.is(fb('port-restricted:no-udp', 'symmetric'), 'relayed');
  t.is(expectedByModel('udp-punch', nat('full-cone:no-udp'), nat('full-cone')), 'failed', 'a router without UDP stops the punch');
});

test('tcp-punch model: a listener behind an endpoint-independent filter, else both mappings endpoint-independent', (t) => {
  const tcp = (a: string, b: string) => expectedByModel('tcp-punch', nat(a), nat(b));
  t.is(tcp('symmetric', 'full-cone'), 'direct-tcp');
  t.is(tcp('dmz', 'symmetric'), 'direct-tcp');
  t.is(tcp('address-restricted', 'port-restricted'), 'direct-tcp');
  t.is(tcp('address-restricted', 'symmetric'), 'failed', 'where UDP connects, TCP has no peer-reflexive rescue');
  t.is(tcp('symmetric', 'symmetric'), 'failed');
});
