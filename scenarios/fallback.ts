import { CLASSIC_TYPES } from '../harness/nat.ts';
import { defineScenario } from '../harness/scenario.ts';

// The strategy of agents/fallback: UDP punch, then TCP simultaneous open, then the TLS relay. Every
// pairing connects; the matrix says which step won (U direct-udp, T direct-tcp, R relayed) and the
// report counts how many of UDP's failures each later step rescued.
//
// - UDP punching fails only where both sides' filters shut out the other's pings (PR × SYM, SYM × PR,
//   SYM × SYM): TCP cannot rescue those (a symmetric NAT's SYN comes from an unpredictable port, and
//   there is no peer-reflexive rescue in TCP), so the relay does.
// - A port-restricted router that forwards no UDP (":no-udp", like networks that let only TCP out)
//   blocks the UDP rendezvous itself: TCP rescues it against every cone and the DMZ (a listener behind
//   an endpoint-independent filter, or a simultaneous open between the restricted cones), the relay
//   against the symmetric NAT.
export default defineScenario({
  name: 'fallback',
  description: 'UDP punch, then TCP simultaneous open, then a TLS relay: every pairing connects, the report shows which step won',
  a: ['dmz', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric', 'port-restricted:no-udp'],
  b: CLASSIC_TYPES,
  tries: 2,
  timeoutMs: 1000,
  agent: { peer: '../agents/fallback/peer.ts', rendezvous: '../agents/fallback/rendezvous.ts', serve: true },
  strategy: ['direct-udp', 'direct-tcp', 'relayed'],
  relay: true,
  expectModel: 'fallback',
});
