// build: Plan → Lab. Creates every namespace, link and address of a plan; each step registers its undo
// on the run's Teardown before it acts. Veths are created inside our namespaces with the peer placed
// straight into another of ours, so nothing ever appears in the root namespace.
//
//                     nmx-<run>-inet: bridge br0 203.0.113.1/24 (no route anywhere else)
//        ┌──────────────────┬────────────────┴───────────────┬────────────────── … one pair per lane
//      rdv                 l0a                              l0b
//   nmx-<run>-rdv     nmx-<run>-0ra  wan 203.0.113.20     nmx-<run>-0rb  wan 203.0.113.21
//   eth0 203.0.113.10  NAT of side A (nft table nmx)       NAT of side B
//   rendezvous agent   lan (bridge) 10.0.1.1/24            lan (bridge) 192.168.2.1/24
//                       │ h0                                │ h0
//                      nmx-<run>-0ha  eth0 10.0.1.10      nmx-<run>-0hb  eth0 192.168.2.10
//                      peer agent, UDP port 40000          peer agent, UDP port 40000
//
// Hosts route only the TEST-NET ranges to their router and routers know nothing beyond the internet
// bridge, so an agent can reach nothing but the lab's own addresses.
import { createNamespaces, deleteNamespaces, ipBatch, sysctl } from './netns.ts';
import { planNamespaces, type Plan, type Side } from './plan.ts';
import type { Teardown } from './teardown.ts';

const TEST_NETS = ['203.0.113.0/24', '198.51.100.0/24'];

const QUIET = {
  // no IPv6: no router solicitations or DAD in captures
  'net.ipv6.conf.all.disable_ipv6': 1,
  'net.ipv6.conf.default.disable_ipv6': 1,
};
const SWITCH = {
  ...QUIET,
  // bridged frames must not run through this namespace's nft/conntrack
  'net.bridge.bridge-nf-call-iptables': 0,
};
const ROUTER = { ...SWITCH, 'net.ipv4.ip_forward': 1 };

export interface Lab {
  plan: Plan;
  namespaces: string[];
  /** leave the namespaces up when the run's teardown unwinds (--keep); processes are still ended */
  keep: () => void;
}

function internetBatch(p: Plan): string[] {
  const lines = [
    'link set lo up',
    `link add ${p.internet.bridge} type bridge`,
    `link set ${p.internet.bridge} up`,
    `addr add ${p.internet.ip}/${p.internet.prefix} dev ${p.internet.bridge}`,
  ];
  const port = (name: string, peerNs: string, peerIf: string) => [
    `link add ${name} type veth peer name ${peerIf} netns ${peerNs}`,
    `link set ${name} master ${p.internet.bridge}`,
    `link set ${name} up`,
  ];
  lines.push(...port('rdv', p.rendezvous.ns, 'eth0'));
  for (const lane of p.lanes) for (const s of [lane.a, lane.b]) lines.push(...port(s.bridgePort, s.router, s.wanIf));
  return lines;
}

function routerBatch(s: Side): string[] {
  return [
    'link set lo up',
    `link set ${s.wanIf} up`,
    `addr add ${s.wanIp}/24 dev ${s.wanIf}`,
    `link add ${s.lanIf} type bridge`,
    `link set ${s.lanIf} up`,
    `addr add ${s.lanIp}/${s.lanPrefix} dev ${s.lanIf}`,
    `link add h0 type veth peer name eth0 netns ${s.host}`,
    `link set h0 master ${s.lanIf}`,
    'link set h0 up',
  ];
}

function hostBatch(s: Side): string[] {
  return [
    'link set lo up',
    'link set eth0 up',
    `addr add ${s.hostIp}/${s.lanPrefix} dev eth0`,
    ...TEST_NETS.map((net) => `route add ${net} via ${s.lanIp}`),
  ];
}

/** Build the plan's topology. On failure the caller's teardown removes whatever was created. */
export async function buildLab(p: Plan, teardown: Teardown): Promise<Lab> {
  const namespaces = planNamespaces(p);
  const keep = teardown.push(`delete ${namespaces.length} namespaces of run ${p.runId}`, () => deleteNamespaces(namespaces));
  await createNamespaces(namespaces);

  const sides = p.lanes.flatMap((l) => [l.a, l.b]);
  await Promise.all([
    sysctl(p.internet.ns, SWITCH),
    sysctl(p.rendezvous.ns, QUIET),
    ...sides.map((s) => sysctl(s.router, ROUTER)),
    ...sides.map((s) => sysctl(s.host, QUIET)),
  ]);

  await ipBatch(internetBatch(p), { ns: p.internet.ns });
  await Promise.all([
    ipBatch(['link set lo up', 'link set eth0 up', `addr add ${p.rendezvous.ip}/${p.internet.prefix} dev eth0`], { ns: p.rendezvous.ns }),
    ...sides.map(async (s) => {
      await ipBatch(routerBatch(s), { ns: s.router });
      await ipBatch(hostBatch(s), { ns: s.host });
    }),
  ]);
  return { plan: p, namespaces, keep };
}
