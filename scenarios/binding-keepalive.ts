import { defineScenario } from '../harness/scenario.ts';

const peers = ['full-cone', 'port-restricted'];
const sides = ['full-cone:lifetime=2', 'full-cone', 'port-restricted:lifetime=2', 'port-restricted'];

// binding-timeout with keepalives: during the 3.5 s hold both agents send one every second, which
// refreshes even the 2 s bindings, so every held path survives.
export default defineScenario({
  name: 'binding-keepalive',
  description: 'the same idle spell with a keepalive every second: every path survives',
  a: peers,
  b: sides,
  tries: 2,
  timeoutMs: 600,
  holdMs: 3500,
  keepaliveMs: 1000,
  expect: Object.fromEntries(peers.map((a) => [a, Object.fromEntries(sides.map((b) => [b, 'direct']))])),
});
