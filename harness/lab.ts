// build: Plan → Lab. Creates every namespace, link and address of a plan; each step registers its undo
// on the run's Teardown before it acts. Veths are created inside our namespaces with the peer placed
// straight into another of ours, so nothing ever appears in the root namespace.
//
//                     nmx-<run>-inet: bridge br0 203.0.113.1/24 (no route anywhere else)
//        ┌──────────────────┬────────────────┴───────────────┬────────────────── … one pair per lane
//      rdv                 l0a                              l0b
//   nmx-<run>-rdv     nmx-<run>-0ra  wan 203.0.113.20     nmx-<run>-0rb  wan 203.0.113.21
//   eth0 203.0.113.10  NAT of side A (nft table nmx)       NAT of side B
//    and .11          lan (bridge) 10.0.1.1/24            lan (bridge) 192.168.2.1/24
//   rendezvous agent,
//   classify probes
//                       │ h0                                │ h0
//                      nmx-<run>-0ha  eth0 10.0.1.10      nmx-<run>-0hb  eth0 192.168.2.10
//                      peer agent, UDP port 40000          peer agent, UDP port 40000
//
// The bridge keeps lanes apart (isolationRuleset): a lane's routers reach each other and rdv, nothing
// of another lane, so a pairing can only ever connect within its lane.
//
// A cloud-eip side's router also holds its host's public address 198.51.100.<n> on `wan`; every node on
// the bridge has 198.51.100.0/24 on-link. Hosts route only the TEST-NET ranges to their router and
// routers know nothing beyond the internet bridge, so an agent can reach nothing but the lab's own
// addresses.
import { setMaxListeners } from 'node:events';
import { existsSync } from 'node:fs';
import { createNamespaces, deleteNamespaces, ipBatch, listNamespaces, nftLoad, nsRun, sweepNamespaces, sysctl } from './netns.ts';
import { CLOUD_SUBNET, nsName, planNamespaces, type Plan, type Side } from './plan.ts';
import type { Teardown } from './teardown.ts';

const TEST_NETS = ['203.0.113.0/24', '198.51.100.0/24'];

// Every interface is brought up with `addrgenmode none` (a link option riding in the namespace's
// `ip -batch`): no IPv6 link-local address, so no router solicitations or DAD in captures.
const up = (dev: string) => [`link set ${dev} addrgenmode none`, `link set ${dev} up`];
const bridge = (dev: string) => [`link add ${dev} type bridge`, ...up(dev)];

// Frames a bridge switches must not run through netfilter (br_netfilter is built in, and a new
// namespace has it on). The bridge option nf_call_iptables 0 is not enough: netfilter runs when either
// it or this sysctl is on. Measured: with it on, a host could not hairpin to itself, because the
// hairpin dnat then happened in the bridge path, which never sends a frame back out its ingress port.
//
// The key exists only while br_netfilter is loaded (built in here; a module that stock Ubuntu runners
// may not load, as recent Docker no longer loads it). Without it no bridge runs netfilter anyway, and
// writing the key would fail the build: it is set only where the kernel has it.
export const BRIDGE_NF_KEY = 'net.bridge.bridge-nf-call-iptables';

/** Whether the kernel has br_netfilter's switch (read from /proc, never changed there);
 * NMX_BR_NETFILTER=absent makes natmatrix act as on a kernel without it (the tests use it). */
export function hasBridgeNetfilter(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NMX_BR_NETFILTER === 'absent') return false;
  return existsSync('/proc/sys/' + BRIDGE_NF_KEY.replace(/\./g, '/'));
}

/** The sysctls that keep switched frames out of netfilter: the key, or nothing without br_netfilter. */
export function switchedNotFiltered(present: boolean = hasBridgeNetfilter()): Record<string, number> {
  return present ? { [BRIDGE_NF_KEY]: 0 } : {};
}

export interface Lab {
  plan: Plan;
  /** lanes are isolated from each other on the internet bridge (false: the kernel has no nft bridge
   * family; cross-lane traffic is then not stopped, only caught by the judge's peer check) */
  isolated: boolean;
  /** what the internet bridge dropped: IPv4 packets that crossed from one lane to another (by the lane
   * they came from), and packets whose TTL was too low to cross the internet's depth */
  bridgeDrops: () => Promise<{ crossLane: Record<number, number>; lowTtl: number }>;
  /** leave the namespaces up when the run's teardown unwinds (--keep); processes are still ended */
  keep: () => void;
  /** resolves once lane i's routers and hosts are configured */
  laneReady: (i: number) => Promise<void>;
}

function internetBatch(p: Plan): string[] {
  const lines = ['link set lo up', ...bridge(p.internet.bridge), `addr add ${p.internet.ip}/${p.internet.prefix} dev ${p.internet.bridge}`];
  const port = (name: string, peerNs: string, peerIf: string) => [
    `link add ${name} type veth peer name ${peerIf} netns ${peerNs}`,
    `link set ${name} master ${p.internet.bridge}`,
    ...up(name),
  ];
  lines.push(...port('rdv', p.rendezvous.ns, 'eth0'));
  for (const lane of p.lanes) for (const s of [lane.a, lane.b]) lines.push(...port(s.bridgePort, s.router, s.wanIf));
  return lines;
}

/** The bridge table that isolates lanes: a lane's two router ports reach each other and the public
 * node (the run's services), nothing else. IPv4 frames between lanes are dropped and counted by the
 * port they came in on. ARP passes, so a packet aimed at another lane is sent (and counted) instead of
 * dying unseen in address resolution; there is no IPv6 in the lab (addrgenmode none). The nft bridge
 * family filters switched frames natively: br_netfilter is not needed (and is off in our namespaces). */
export const ISOLATION_TABLE = 'nmx_lanes';

export function isolationRuleset(p: Plan): string {
  const ports = p.lanes.flatMap((l) => [l.a.bridgePort, l.b.bridgePort]);
  const pairs = p.lanes.flatMap((l) => [`"${l.a.bridgePort}" . "${l.b.bridgePort}"`, `"${l.b.bridgePort}" . "${l.a.bridgePort}"`]);
  return [
    `table bridge ${ISOLATION_TABLE} {`,
    `  set lanes { type ifname . ifname; elements = { ${pairs.join(', ')} } }`,
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    // the internet's depth: a packet whose TTL would not survive `internetHops` more routers dies here,
    // as it would between two real NATs (low-TTL tricks meant to open only one's own NAT must not
    // reach the peer across a lab whose "internet" is a single bridge)
    ...(p.internetHops > 0 ? [`    meta protocol ip ip ttl <= ${p.internetHops} counter drop comment "ttl"`] : []),
    '    iifname "rdv" accept',
    '    oifname "rdv" accept',
    '    iifname . oifname @lanes accept',
    '    meta protocol != ip accept',
    ...ports.map((port) => `    iifname "${port}" counter drop`),
    '    drop',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** `nft list` of the isolation chain → packets that died of a low TTL. */
export function parseLowTtlDrops(listing: string): number {
  return Number(/counter packets (\d+) bytes \d+ drop comment "ttl"/.exec(listing)?.[1] ?? 0);
}

/** `nft list` of the isolation chain → dropped IPv4 packets per lane. */
export function parseCrossLaneDrops(listing: string, p: Plan): Record<number, number> {
  const byPort = new Map<string, number>();
  for (const m of listing.matchAll(/iifname "([^"]+)" counter packets (\d+)/g)) byPort.set(m[1]!, Number(m[2]));
  const drops: Record<number, number> = {};
  for (const l of p.lanes) {
    const n = (byPort.get(l.a.bridgePort) ?? 0) + (byPort.get(l.b.bridgePort) ?? 0);
    if (n > 0) drops[l.index] = n;
  }
  return drops;
}

/** A router: WAN up with its address, a LAN bridge with one port per downstream node (veth h<i>, its
 * peer placed in that node's namespace as `wan` or `eth0`), and routes. */
function routerBatch(r: { wanIp: string; lanIp: string; lanPrefix: number; publicIp?: string }, downstream: Array<[ns: string, ifname: string]>, routes: string[]): string[] {
  return [
    'link set lo up',
    ...up('wan'),
    `addr add ${r.wanIp}/24 dev wan`,
    ...(r.publicIp ? [`addr add ${r.publicIp}/24 dev wan`] : []),
    ...bridge('lan'),
    `addr add ${r.lanIp}/${r.lanPrefix} dev lan`,
    ...downstream.flatMap(([ns, ifname], i) => [`link add h${i} type veth peer name ${ifname} netns ${ns}`, `link set h${i} master lan`, ...up(`h${i}`)]),
    ...routes,
  ];
}

function hostBatch(s: Side, ip: string): string[] {
  return [
    'link set lo up',
    ...up('eth0'),
    `addr add ${ip}/${s.lanPrefix} dev eth0`,
    ...TEST_NETS.map((net) => `route add ${net} via ${s.hostGateway}`),
  ];
}

/** 198.51.100.0/24 is on-link on the internet bridge (a router holding a public address there has the
 * route already). */
const cloudRoute = (s: Side): string[] => (s.publicIp ? [] : [`route add ${CLOUD_SUBNET} dev wan`]);

/** Promise.all that settles only once every step ended (a build step must not run on unwatched after
 * its sibling failed), rejecting with the first failure. */
async function allEnded<T extends readonly unknown[]>(steps: readonly [...{ [K in keyof T]: Promise<T[K]> }]): Promise<T> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

async function buildSide(s: Side, signal: AbortSignal): Promise<void> {
  // a new namespace does not forward; routers are the only place natmatrix sets sysctls (and the
  // internet namespace, for its bridge)
  await sysctl(s.router, { 'net.ipv4.ip_forward': 1, ...switchedNotFiltered() }, signal);
  const hosts: Array<[string, string]> = [[s.host, 'eth0'], ...(s.host2 ? [[s.host2.ns, 'eth0'] as [string, string]] : [])];
  if (s.inner) {
    // carrier router → home router → host; the carrier routes the home LAN back (for a single NAT
    // running on the carrier while the home router only forwards)
    const home = `${s.hostIp.split('.').slice(0, 3).join('.')}.0/${s.inner.lanPrefix}`;
    await ipBatch(routerBatch(s, [[s.inner.router, 'wan']], [`route add ${home} via ${s.inner.wanIp}`, ...cloudRoute(s)]), { ns: s.router, signal });
    await sysctl(s.inner.router, { 'net.ipv4.ip_forward': 1, ...switchedNotFiltered() }, signal);
    await ipBatch(routerBatch(s.inner, hosts, TEST_NETS.map((net) => `route add ${net} via ${s.lanIp}`)), { ns: s.inner.router, signal });
  } else {
    await ipBatch(routerBatch(s, hosts, cloudRoute(s)), { ns: s.router, signal });
  }
  await allEnded([
    ipBatch(hostBatch(s, s.hostIp), { ns: s.host, signal }),
    ...(s.host2 ? [ipBatch(hostBatch(s, s.host2.ip), { ns: s.host2.ns, signal })] : []),
  ]);
}

/**
 * Build the plan's topology: namespaces, the internet bridge and the rendezvous now; the lanes' routers
 * and hosts in the background, so the first lanes run attempts while later ones are still being built
 * (`laneReady`). On failure the caller's teardown removes whatever was created.
 *
 * The teardown may start while the build is still going (a signal, a failed lane): its undo first
 * aborts every build command still running (the `ip -batch` that creates the namespaces is killed
 * wherever it is; nothing not yet started starts) and waits for them to end, then deletes the run's
 * namespaces as they are listed then, and checks that none is left. A namespace it cannot remove makes
 * the undo fail, naming it: the run must not claim a clean teardown.
 */
export async function buildTopology(p: Plan, teardown: Teardown): Promise<Lab> {
  const namespaces = planNamespaces(p);
  const building = new AbortController();
  const signal = building.signal;
  setMaxListeners(0, signal); // one listener per build command in flight, dozens at once
  /** every build step in flight: the undo waits for all of them to end before it deletes */
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(step: Promise<T>): Promise<T> => {
    inFlight.add(step);
    const settle = () => void inFlight.delete(step);
    step.then(settle, settle);
    return step;
  };
  let kept = false;
  // every process left inside is ended first (a daemon an agent forked, …), kept or not
  teardown.push(`delete ${namespaces.length} namespaces of run ${p.runId}`, async () => {
    building.abort(new Error('the run is being torn down'));
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    if (kept) {
      await sweepNamespaces(namespaces);
      return;
    }
    await deleteNamespaces(namespaces);
    // whatever is still there by the run's prefix: once more, then name it
    const prefix = nsName(p.runId, '');
    let left = await listNamespaces(prefix);
    if (left.length > 0) {
      await deleteNamespaces(left);
      left = await listNamespaces(prefix);
    }
    if (left.length > 0) throw new Error(`${left.length} namespaces of run ${p.runId} are left: ${left.slice(0, 4).join(', ')}${left.length > 4 ? ', …' : ''}`);
  });
  const keep = () => {
    kept = true;
  };
  await track(createNamespaces(namespaces, signal));
  const [, , isolated] = await track(
    allEnded([
      ipBatch(internetBatch(p), { ns: p.internet.ns, signal }),
      hasBridgeNetfilter() ? sysctl(p.internet.ns, switchedNotFiltered(true), signal) : Promise.resolve(''),
      // probed, not assumed: a kernel without the nft bridge family runs unisolated lanes (the judge's
      // peer check still refuses a verdict naming another lane's address)
      nftLoad(p.internet.ns, isolationRuleset(p), signal).then(() => true, () => false),
    ]),
  );
  const rdvAddrs = [p.rendezvous.ip, p.rendezvous.altIp, p.rendezvous.stunIp, p.rendezvous.stunAltIp].map((ip) => `addr add ${ip}/${p.internet.prefix} dev eth0`);
  await track(ipBatch(['link set lo up', ...up('eth0'), ...rdvAddrs, `route add ${CLOUD_SUBNET} dev eth0`], { ns: p.rendezvous.ns, signal }));
  const lanes = p.lanes.map((l) => track(allEnded([buildSide(l.a, signal), buildSide(l.b, signal)]).then(() => undefined)));
  // failures surface when a lane is awaited; don't let an unawaited one crash the process meanwhile
  for (const l of lanes) l.catch(() => {});
  const bridgeDrops = async () => {
    if (!isolated) return { crossLane: {}, lowTtl: 0 };
    const listing = await nsRun(p.internet.ns, ['nft', 'list', 'chain', 'bridge', ISOLATION_TABLE, 'forward']);
    return { crossLane: parseCrossLaneDrops(listing, p), lowTtl: parseLowTtlDrops(listing) };
  };
  return { plan: p, isolated, bridgeDrops, keep, laneReady: (i) => lanes[i]! };
}
