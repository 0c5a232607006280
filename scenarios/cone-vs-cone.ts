import { defineScenario } from '../harness/scenario.ts';

// Every pairing of cone NATs punches: their mappings are endpoint-independent, so the endpoint the
// rendezvous saw is the one the other peer must aim at, and each side's first packet opens its filter.
export default defineScenario({
  name: 'cone-vs-cone',
  description: 'full, address-restricted and port-restricted cones against each other',
  a: ['full-cone', 'address-restricted', 'port-restricted'],
  b: ['full-cone', 'address-restricted', 'port-restricted'],
  tries: 3,
  timeoutMs: 600,
  expect: {
    'full-cone': { 'full-cone': 'direct', 'address-restricted': 'direct', 'port-restricted': 'direct' },
    'address-restricted': { 'full-cone': 'direct', 'address-restricted': 'direct', 'port-restricted': 'direct' },
    'port-restricted': { 'full-cone': 'direct', 'address-restricted': 'direct', 'port-restricted': 'direct' },
  },
});
