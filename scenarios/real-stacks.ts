import { defineScenario } from '../harness/scenario.ts';

// Three stacks side by side on the same routers: natmatrix's own UDP hole puncher, Holepunch's
// hyperdht (agents/examples/hyperdht) and a WebRTC/ICE stack, werift, with the run's STUN and TURN
// (agents/examples/webrtc). Each brings its own expectations (its manifest's rules); the report shows a
// matrix per stack, the pairings where they differ, and each one's time-to-direct. The examples install
// their own dependencies (npm ci in their folder) on first use.
//
// Where they differ from the textbook, and why (README "Real stacks"):
// - hyperdht refuses two "random" (address- or port-dependent mapping) NATs by design, and connects a
//   port-restricted cone with a symmetric NAT by a birthday-paradox punch (256 sockets);
// - ICE connects every pairing, through TURN where no direct path exists, and werift's aggressive
//   nomination often settles on the relay even where a direct path exists;
// - the single-port dmz is a port-restricted cone for stacks that punch from sockets of their own
//   choosing; dmz-host forwards every port.
export default defineScenario({
  name: 'real-stacks',
  description: 'udp-punch, hyperdht and WebRTC (werift) through the classic NATs, side by side',
  a: ['dmz', 'dmz-host', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'],
  b: ['full-cone', 'address-restricted', 'port-restricted', 'symmetric'],
  tries: 2,
  timeoutMs: 600,
  agents: {
    'udp-punch': '../agents/udp-punch/natmatrix-agent.json',
    hyperdht: '../agents/examples/hyperdht/natmatrix-agent.json',
    webrtc: '../agents/examples/webrtc/natmatrix-agent.json',
  },
});
