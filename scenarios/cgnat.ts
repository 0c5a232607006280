import { defineScenario } from '../harness/scenario.ts';

// Double NAT: a home router ("home+carrier": the first type) behind a carrier-grade NAT (the second)
// on the shared address space 100.64.0.0/24 (RFC 6598), against single cone and symmetric NATs. A
// double NAT behaves as its stricter layer — `npm run classify -- full-cone+symmetric` measures that —
// and punching follows the composed behaviour, so the expectations come from the model. Side B has no
// double NAT and keeps one router per site.
export default defineScenario({
  name: 'cgnat',
  description: 'home routers behind carrier-grade NATs against cone and symmetric peers',
  a: ['full-cone+full-cone', 'full-cone+port-restricted', 'port-restricted+full-cone', 'full-cone+symmetric', 'symmetric+full-cone'],
  b: ['full-cone', 'port-restricted', 'symmetric'],
  tries: 2,
  timeoutMs: 600,
  expectModel: 'udp-punch',
});
