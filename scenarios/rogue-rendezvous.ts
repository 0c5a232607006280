import { defineScenario } from '../harness/scenario.ts';

// Peers take introductions only when they are signed with the run's secret, fresh, for their session
// and not seen before. Here an attacker beside the rendezvous sends every peer a forged introduction
// ("connect to 203.0.113.99:9") ahead of the genuine one, plus unsigned, truncated, cross-session and
// replayed copies, all from the rendezvous's own address. Every pairing must still come out exactly as
// in the textbook matrix, and no peer may ever aim at the attacker's address (see the peers' logs).
export default defineScenario({
  name: 'rogue-rendezvous',
  description: 'forged, replayed and truncated introductions are ignored; the genuine punch still succeeds',
  a: ['full-cone', 'port-restricted', 'symmetric'],
  b: ['full-cone', 'symmetric'],
  tries: 2,
  timeoutMs: 600,
  agent: { peer: '../agents/udp-punch/peer.ts', rendezvous: '../agents/udp-punch/rogue-rendezvous.ts', serve: true },
  expect: {
    'full-cone': { 'full-cone': 'direct', symmetric: 'direct' },
    'port-restricted': { 'full-cone': 'direct', symmetric: 'failed' },
    symmetric: { 'full-cone': 'direct', symmetric: 'failed' },
  },
});
