import { defineScenario } from '../harness/scenario.ts';

// Seed 000 (matconnect): two cloud hosts, each with a public IP that receives inbound traffic (the
// internet gateway's stateless 1:1 translation) but whose every packet leaves through a separate NAT
// gateway with another address. Ordinary request/response fails — the answer comes back from B's
// gateway address, and A's gateway admits replies only from where A sent. matconnect builds one
// logical connection from two one-way streams: every datagram carries a 6-byte header with the
// sender's public address and port, and the answer goes there, not back to the source.
//
// The agent tries plain request/response first (its "plain-udp" step must fail here), then matconnect.
// The same topology defeats the udp-punch agent too (both gateways are symmetric NATs):
//   npm run scenario matconnect -- --agent agents/udp-punch/peer.ts
export default defineScenario({
  name: 'matconnect',
  description: 'cloud hosts with public IPs whose replies leave through another NAT gateway: plain UDP fails, matconnect connects',
  a: ['cloud-eip'],
  b: ['cloud-eip'],
  tries: 3,
  timeoutMs: 600,
  agent: { peer: '../agents/matconnect/peer.ts', rendezvous: '../agents/udp-punch/rendezvous.ts', serve: true },
  strategy: ['plain-udp', 'matconnect'],
  expect: { 'cloud-eip': { 'cloud-eip': 'matconnect' } },
});
