import { defineScenario } from '../harness/scenario.ts';

// Every RFC 4787 mapping behaviour × every filtering behaviour, on both sides: 9 × 9 pairings. No cell
// is typed by hand: each expectation comes from the udp-punch model (harness/model.ts), so the run
// checks the model against real kernels as much as it checks the NATs.
const grid = ['ei', 'ad', 'apd'].flatMap((m) => ['ei', 'ad', 'apd'].map((f) => `${m}m-${f}f`));

export default defineScenario({
  name: 'rfc4787-grid',
  description: 'all nine RFC 4787 mapping × filtering combinations against each other, expectations from the model',
  a: grid,
  b: grid,
  tries: 2,
  timeoutMs: 600,
  expectModel: 'udp-punch',
});
