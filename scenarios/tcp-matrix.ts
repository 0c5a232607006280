import { defineScenario } from '../harness/scenario.ts';

const types = ['address-restricted', 'port-restricted', 'symmetric'];

// TCP simultaneous open (RFC 5382, seed 003) instead of UDP punching; the NAT templates treat TCP like
// UDP. The crossing SYNs only meet when each side aims at the other's actual mapping, and without a
// listener there is no peer-reflexive rescue: every pairing with a symmetric NAT fails, where UDP
// connects SYM × AR (compare full-matrix).
//
// Left out on purpose: NATs that filter endpoint-independently (full cone, DMZ). They forward the
// peer's early SYN to a host that has no socket waiting yet; its kernel answers RST, and whether the
// next SYN then meets depends on timing — measured 0/2 and 1/2 on the same pairing in two runs. A
// scenario must be repeatable, so they stay out until the agent can keep a listener on its punching
// port beside its connecting sockets (SO_REUSEPORT; Node ≥ 22.12).
export default defineScenario({
  name: 'tcp-matrix',
  description: 'TCP simultaneous open through address-restricted, port-restricted and symmetric NATs',
  a: types,
  b: types,
  tries: 3,
  timeoutMs: 1500,
  agent: { peer: '../agents/tcp-punch/peer.ts', rendezvous: '../agents/tcp-punch/rendezvous.ts' },
  expect: Object.fromEntries(types.map((a) => [a, Object.fromEntries(types.map((b) => [b, a === 'symmetric' || b === 'symmetric' ? 'failed' : 'direct']))])),
});
