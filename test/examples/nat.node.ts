// The same with node:test. Run as root: sudo node --import tsx --test test/nat.node.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildLab, runScenario, defineScenario } from 'natmatrix';

test('our agent against symmetric and cone NATs', async () => {
  const scenario = defineScenario({
    name: 'inline', description: 'my agent, three pairings',
    a: ['symmetric'], b: ['full-cone', 'port-restricted'], tries: 1,
    agent: { peer: 'agents/peer.py', rendezvous: 'node_modules/natmatrix/agents/udp-punch/rendezvous.ts' },
    expect: { symmetric: { 'full-cone': 'direct', 'port-restricted': 'failed' } },
  });
  const report = await runScenario(scenario);
  assert.equal(report.summary.errored, 0, `evidence in ${report.outDir}`);
  assert.deepEqual(report.cells.map((c) => c.outcome), ['direct', 'failed']);
});

test('a full cone keeps one mapping whoever it talks to', async () => {
  await using lab = await buildLab({ a: 'full-cone', b: 'symmetric' });
  const echo = `const s = require('node:dgram').createSocket('udp4');
    s.on('message', (m, r) => s.send(r.address + ':' + r.port, r.port, r.address)); s.bind(5000);`;
  const server = lab.spawn('public', [process.execPath, '-e', echo]);
  const client = `const s = require('node:dgram').createSocket('udp4');
    s.on('message', (m) => { console.log(String(m)); process.exit(0); });
    setInterval(() => s.send('hi', 5000, process.argv[1]), 100);`;
  const r = await lab.exec('a', [process.execPath, '-e', client, lab.node('public').ip], { timeoutMs: 5000 });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${lab.router('a').wanIp}:`));
  await server.stop();
});
