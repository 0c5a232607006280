import test from 'ava';
import { misbehaving, renderClassification, type Classification } from '../../harness/classify.ts';

const ok: Classification = {
  nat: 'full-cone',
  declared: { mapping: 'endpoint-independent', filtering: 'endpoint-independent' },
  measured: { mapping: 'endpoint-independent', filtering: 'endpoint-independent', portPreserved: true },
  mapped: { mapping: [], filtering: [] },
  matches: true,
  problem: null,
};
const liar: Classification = { ...ok, nat: 'address-restricted', declared: { mapping: 'endpoint-independent', filtering: 'address-dependent' }, matches: false };
const silent: Classification = { ...ok, nat: 'symmetric', measured: { mapping: null, filtering: null, portPreserved: null }, matches: false, problem: 'no answer from 203.0.113.10:3479' };

test('classification table: declared, measured, port preservation, verdict', (t) => {
  const table = renderClassification([ok, liar, silent]);
  t.regex(table, /^full-cone\s+EI \/ EI\s+EI \/ EI\s+yes\s+✓$/m);
  t.regex(table, /^address-restricted\s+EI \/ AD\s+EI \/ EI\s+yes\s+✗ differs$/m);
  t.regex(table, /^symmetric\s+EI \/ EI\s+\? \(no answer from 203\.0\.113\.10:3479\)\s+\?\s+✗ differs$/m);
});

test('misbehaving: one line per router that is not what it claims', (t) => {
  t.deepEqual(misbehaving([ok, liar, silent]), [
    'address-restricted is declared endpoint-independent mapping / address-dependent filtering but measured endpoint-independent / endpoint-independent',
    'symmetric is declared endpoint-independent mapping / endpoint-independent filtering but measured nothing (no answer from 203.0.113.10:3479)',
  ]);
  t.deepEqual(misbehaving([ok]), []);
});
