import test from 'ava';
import { misbehaving, renderClassification, type Classification } from '../../harness/classify.ts';

const ok: Classification = {
  nat: 'full-cone',
  declared: { mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: false, ports: 'preserve', lifetimeS: 120 },
  measured: { mapping: 'endpoint-independent', filtering: 'endpoint-independent', portPreserved: true, hairpinning: false },
  mapped: { mapping: [], filtering: [] },
  matches: true,
  problem: null,
};
const liar: Classification = {
  ...ok,
  nat: 'address-restricted',
  declared: { mapping: 'endpoint-independent', filtering: 'address-dependent', hairpinning: false, ports: 'preserve', lifetimeS: 120 },
  matches: false,
};
const silent: Classification = {
  ...ok,
  nat: 'symmetric',
  measured: { mapping: null, filtering: null, portPreserved: null, hairpinning: null },
  matches: false,
  problem: 'no answer from 203.0.113.10:3480',
};
const noHairpin: Classification = {
  ...ok,
  nat: 'port-restricted:hairpin:lifetime=5',
  declared: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hairpinning: true, ports: 'preserve', lifetimeS: 5 },
  measured: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', portPreserved: true, hairpinning: false },
  matches: false,
};

test('classification table: declared, measured, port preservation, lifetime, verdict', (t) => {
  const table = renderClassification([ok, liar, silent, noHairpin]);
  t.regex(table, /^full-cone\s+EI \/ EI, no\s+EI \/ EI, no\s+yes \(preserve\)\s+120 s \(configured\)\s+✓$/m);
  t.regex(table, /^address-restricted\s+EI \/ AD, no\s+EI \/ EI, no\s+yes \(preserve\)\s+120 s \(configured\)\s+✗ differs$/m);
  t.regex(table, /^symmetric\s+EI \/ EI, no\s+\? \(no answer from 203\.0\.113\.10:3480\)\s+\? \(preserve\)\s+120 s \(configured\)\s+✗ differs$/m);
  t.regex(table, /^port-restricted:hairpin:lifetime=5\s+EI \/ APD, yes\s+EI \/ APD, no\s+yes \(preserve\)\s+5 s \(configured\)\s+✗ differs$/m);
});

test('misbehaving: one line per router that is not what it claims', (t) => {
  t.deepEqual(misbehaving([ok, liar, silent, noHairpin]), [
    'address-restricted is declared endpoint-independent mapping / address-dependent filtering / port-preserving but measured endpoint-independent / endpoint-independent / port-preserving',
    'symmetric is declared endpoint-independent mapping / endpoint-independent filtering / port-preserving but measured nothing (no answer from 203.0.113.10:3480)',
    'port-restricted:hairpin:lifetime=5 is declared endpoint-independent mapping / address-and-port-dependent filtering / hairpinning / port-preserving but measured endpoint-independent / address-and-port-dependent / port-preserving',
  ]);
  t.deepEqual(misbehaving([ok]), []);
});
