import { defineScenario } from '../harness/scenario.ts';

// Polykey's DMZ: the host's socket is statically forwarded, so anyone can reach it at a fixed public
// endpoint. It connects to every NAT type, symmetric included.
export default defineScenario({
  name: 'dmz',
  description: "Polykey's DMZ (static port forward) against every NAT type",
  a: ['dmz'],
  b: ['dmz', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'],
  tries: 3,
  timeoutMs: 600,
  expect: {
    dmz: { dmz: 'direct', 'full-cone': 'direct', 'address-restricted': 'direct', 'port-restricted': 'direct', symmetric: 'direct' },
  },
});
