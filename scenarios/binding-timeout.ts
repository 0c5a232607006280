import { defineScenario } from '../harness/scenario.ts';

const peers = ['full-cone', 'port-restricted'];
const sides = ['full-cone:lifetime=2', 'full-cone', 'port-restricted:lifetime=2', 'port-restricted'];

// A punched path, then 3.5 s of silence, then side A probes it. Side B's NAT forgets an idle UDP
// binding after 2 s in the ":lifetime=2" columns (conntrack entry and learned mapping alike) and drops
// the probe: the path died. With the default 120 s it survives. binding-keepalive is the same with
// keepalives every second, which keep even the 2 s bindings alive.
export default defineScenario({
  name: 'binding-timeout',
  description: 'a punched path left idle for 3.5 s dies behind NATs with 2 s UDP bindings',
  a: peers,
  b: sides,
  tries: 2,
  timeoutMs: 600,
  holdMs: 3500,
  keepaliveMs: 0,
  expect: Object.fromEntries(peers.map((a) => [a, Object.fromEntries(sides.map((b) => [b, b.endsWith(':lifetime=2') ? 'failed' : 'direct']))])),
});
