import { CLASSIC_TYPES } from '../harness/nat.ts';
import { defineScenario } from '../harness/scenario.ts';

// The textbook 5 × 5 over TCP instead of UDP (compare full-matrix): agents/tcp-punch lets b listen
// while a connects, then the other way round, then tries a simultaneous open (RFC 5382, seed 003).
// A NAT that filters endpoint-independently (full cone, DMZ) lets the peer's SYN reach a listener, so
// it connects with anything, symmetric included. Between the restricted cones the simultaneous open
// connects. Every other pairing with a symmetric NAT fails: a SYN from the symmetric side's fresh port
// finds no socket, and TCP has no peer-reflexive rescue — where UDP still connects SYM × AR.
export default defineScenario({
  name: 'tcp-matrix',
  description: 'TCP (listen, then simultaneous open) through all five NAT types: the textbook matrix next to UDP\'s',
  a: CLASSIC_TYPES,
  b: CLASSIC_TYPES,
  tries: 3,
  timeoutMs: 1500,
  agent: { peer: '../agents/tcp-punch/peer.ts', rendezvous: '../agents/tcp-punch/rendezvous.ts', serve: true },
  expectModel: 'tcp-punch',
});
