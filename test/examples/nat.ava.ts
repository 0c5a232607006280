// An ava test of a P2P stack with natmatrix. Run as root: sudo npx ava
import test from 'ava';
import { buildLab, runScenario } from 'natmatrix';

test('our agent connects where our scenario expects it to, and fails where it expects that', async (t) => {
  const report = await runScenario('mine', { tries: 2 }); // scenarios/mine.json, beside package.json
  t.is(report.summary.errored, 0, `evidence in ${report.outDir}`);
  t.is(report.summary.mismatched, 0, report.cells.filter((c) => !c.match).map((c) => `${c.a} × ${c.b}: ${c.outcome}`).join('; '));
});

test('a symmetric NAT gives every destination its own port', async (t) => {
  await using lab = await buildLab({ a: 'symmetric', b: 'full-cone' });
  const echo = `const s = require('node:dgram').createSocket('udp4');
    s.on('message', (m, r) => s.send(r.address + ':' + r.port, r.port, r.address));
    s.bind(Number(process.env.PORT), () => console.log('ready'));`;
  const servers = ['5000', '5001'].map((PORT) => lab.spawn('public', [process.execPath, '-e', echo], { env: { PORT } }));
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const client = `const s = require('node:dgram').createSocket('udp4'); const seen = new Set();
    s.on('message', (m) => { seen.add(String(m)); if (seen.size === 2) { console.log([...seen].join(' ')); process.exit(0); } });
    setInterval(() => { for (const p of [5000, 5001]) s.send('hi', p, process.argv[1]); }, 100);`;
  const r = await lab.exec('a', [process.execPath, '-e', client, lab.node('public').ip], { timeoutMs: 5000 });
  const [first, second] = r.stdout.trim().split(' ');
  t.is(r.exitCode, 0, r.stderr);
  t.not(first, second, 'two destinations, two mappings');
  t.regex(await lab.router('a').conntrack(), /dport=5001/);
});
