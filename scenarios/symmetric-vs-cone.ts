import { defineScenario } from '../harness/scenario.ts';

// A peer behind a symmetric NAT against the three cone NATs. Symmetric mapping hands out a new external
// port for every new destination, so the cone peer only gets through when its NAT filters by address
// (or not at all) and the agent answers the source it actually observes. Port-restricted filtering
// admits only the endpoint the cone peer aimed at, which the symmetric NAT never uses: that pairing fails.
export default defineScenario({
  name: 'symmetric-vs-cone',
  description: 'symmetric NAT against full, address-restricted and port-restricted cones',
  a: ['symmetric'],
  b: ['full-cone', 'address-restricted', 'port-restricted'],
  tries: 3,
  timeoutMs: 600,
  expect: {
    symmetric: { 'full-cone': 'direct', 'address-restricted': 'direct', 'port-restricted': 'failed' },
  },
});
