import { defineScenario } from '../harness/scenario.ts';

const types = ['dmz', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'];

// The textbook 5 × 5 UDP hole-punching matrix: everything connects except where a symmetric NAT's
// fresh external port meets port-restricted (or symmetric) filtering on the other side.
const fails = new Set(['symmetric×symmetric', 'symmetric×port-restricted', 'port-restricted×symmetric']);

export default defineScenario({
  name: 'full-matrix',
  description: 'all five NAT types against each other (the textbook matrix)',
  a: types,
  b: types,
  tries: 3,
  timeoutMs: 600,
  expect: Object.fromEntries(
    types.map((a) => [a, Object.fromEntries(types.map((b) => [b, fails.has(`${a}×${b}`) ? 'failed' : 'direct']))]),
  ),
});
