#!/usr/bin/env node
// natmatrix rendezvous agent for hyperdht: a small private HyperDHT testnet on the rendezvous node.
//
// The first node is a bootstrap node on NMX_LISTEN (HyperDHT.bootstrapper, as `hyperdht --bootstrap`
// does); the others are persistent (ephemeral: false), unfirewalled DHT nodes that join through it, as
// hyperdht's own testnet.js does. They are the nodes the peers' holepunchers ping to sample their NAT
// (lib/nat.js: 4 samples; it needs several nodes to tell a consistent port mapping from a random one),
// and the nodes the server announces to and the handshake / holepunch messages are relayed through.
//
// Layout (env, inherited from the natmatrix CLI's environment):
//   HDHT_NODES    total number of DHT nodes, bootstrap included (default 4, at least 2)
//   HDHT_LAYOUT   "spread" (default): alternate the nodes between NMX_LISTEN's address and the next
//                 IPv4 address of this node in the same /24 (natmatrix's rendezvous node has
//                 203.0.113.10 and .11, the classify probes' second address), so the NAT samplers see
//                 two remote IPs, as on the real DHT, where no two nodes share an address: an
//                 address-dependent mapping then shows two ports and counts as random;
//                 "single": every node on NMX_LISTEN's address, on the following ports (an
//                 address-dependent mapping then looks consistent).
// Ports 3480-3481 are skipped (natmatrix's classify probes use them); a port that is taken is skipped.
//
// stdout: exactly one line, {"ready":true,"listen":"<ip:port>"}, once every node is bootstrapped.
// stderr: logs. SIGTERM / SIGINT: destroy the nodes, exit 0.

import os from 'node:os';
import DHT from 'hyperdht';

// nothing but the ready line on stdout, whoever logs
console.log = console.info = console.debug = console.warn = console.error;
const log = (...a) => console.error(`[hdht-rdv ${new Date().toISOString()}]`, ...a);

const listen = process.env.NMX_LISTEN ?? '';
const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(listen);
if (!m) {
  log(`bad NMX_LISTEN ${JSON.stringify(listen)} (want ip:port)`);
  process.exit(2);
}
const host = m[1];
const port = Number(m[2]);
const total = Math.max(2, Number(process.env.HDHT_NODES ?? 4) || 4);
const layout = process.env.HDHT_LAYOUT === 'single' ? 'single' : 'spread';
const RESERVED = new Set([3480, 3481]);

/** this node's other IPv4 addresses in NMX_LISTEN's /24, the next one above it first */
function sameSubnetAddresses() {
  const prefix = host.split('.').slice(0, 3).join('.') + '.';
  const last = (ip) => Number(ip.split('.')[3]);
  const out = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4' && !a.internal && a.address !== host && a.address.startsWith(prefix)) out.push(a.address);
    }
  }
  const me = last(host);
  return out.sort((x, y) => ((last(x) - me + 256) % 256) - ((last(y) - me + 256) % 256));
}

/** where the nodes go: [bootstrap, ...others] as {host, port} */
function plan() {
  const other = sameSubnetAddresses()[0];
  const hosts = layout === 'spread' && other ? [host, other] : [host];
  const next = new Map(hosts.map((h) => [h, port]));
  const used = new Set();
  const out = [];
  for (let i = 0; out.length < total; i++) {
    const h = hosts[i % hosts.length];
    let p = next.get(h);
    while (RESERVED.has(p) || used.has(`${h}:${p}`)) p++;
    used.add(`${h}:${p}`);
    next.set(h, p + 1);
    out.push({ host: h, port: p });
  }
  return out;
}

const nodes = [];
let stopping = false;

async function stop(sig) {
  if (stopping) return;
  stopping = true;
  log(`${sig}: destroying ${nodes.length} nodes`);
  const t = setTimeout(() => process.exit(0), 2000);
  t.unref();
  await Promise.allSettled(nodes.map((n) => n.destroy({ force: true })));
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

async function main() {
  const where = plan();
  log(`starting ${where.length} DHT nodes (${layout}): ${where.map((w) => `${w.host}:${w.port}`).join(' ')}`);
  const t0 = performance.now();

  // the bootstrap node: persistent from the start, its own address given (it has nobody to ask)
  const first = DHT.bootstrapper(where[0].port, where[0].host, { host: where[0].host });
  nodes.push(first);
  await first.fullyBootstrapped();
  log(`bootstrap node ${JSON.stringify(first.address())} ready, id ${first.id ? first.id.toString('hex').slice(0, 16) : 'none (ephemeral!)'}`);

  const bootstrap = [`${where[0].host}:${where[0].port}`];
  const taken = new Set(where.map((w) => `${w.host}:${w.port}`));
  for (const w of where.slice(1)) {
    let node = null;
    for (let tries = 0; !node; tries++) {
      const n = new DHT({ ephemeral: false, firewalled: false, bootstrap, host: w.host, port: w.port, anyPort: false });
      try {
        await n.bind();
        node = n;
      } catch (err) {
        await n.destroy().catch(() => {});
        if (tries >= 10) throw err;
        log(`${w.host}:${w.port} is taken (${err.code ?? err.message}), trying the next port`);
        do w.port++;
        while (RESERVED.has(w.port) || taken.has(`${w.host}:${w.port}`));
        taken.add(`${w.host}:${w.port}`);
      }
    }
    nodes.push(node);
    await node.fullyBootstrapped();
    log(`node ${w.host}:${w.port} ready, ${node.ephemeral ? 'EPHEMERAL (not in routing tables!)' : 'persistent'}, sees itself as ${node.host}:${node.port}`);
  }
  // a refresh so that every node knows every other one
  await Promise.allSettled(nodes.map((n) => n.findNode(n.table.id).finished()));
  for (const n of nodes) log(`node ${n.address().host}:${n.address().port}: ${n.nodes.length} other nodes in its table`);
  log(`testnet up in ${(performance.now() - t0).toFixed(0)} ms`);
  process.stdout.write(JSON.stringify({ ready: true, listen }) + '\n');

  // a line now and then about what the testnet did (handshakes and holepunches it relayed)
  setInterval(() => {
    const s = nodes.map((n) => `${n.stats.requests.total}req`).join(' ');
    log(`stats: ${s}`);
  }, 30_000).unref();
  // keep the process alive until signalled
  setInterval(() => {}, 1 << 30);
}

main().catch((err) => {
  log(`failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
