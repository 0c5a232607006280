import { defineScenario } from '../harness/scenario.ts';

const types = ['full-cone', 'address-restricted', 'port-restricted', 'symmetric'];

// Two hosts behind one NAT ("same-site"). They learn each other's external endpoint from the
// rendezvous, so their packets go to the router's own external address: without hairpinning (RFC 4787
// REQ-9; off by default, as in Linux) the router keeps them, and no pairing connects. With ":hairpin"
// the router turns them around (dnat through its learned map, snat to its external address), and every
// type connects — symmetric too, because the peer answers the source it observes.
export default defineScenario({
  name: 'hairpin',
  description: 'two hosts behind the same NAT, hairpinning off and on',
  a: [...types, ...types.map((t) => `${t}:hairpin`)],
  b: ['same-site'],
  tries: 2,
  timeoutMs: 600,
  expect: Object.fromEntries([...types.map((t) => [t, { 'same-site': 'failed' }]), ...types.map((t) => [`${t}:hairpin`, { 'same-site': 'direct' }])]),
});
