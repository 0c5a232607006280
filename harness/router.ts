// Routers during a run: a fresh NAT for every try (ruleset reloaded, conntrack emptied), their state
// kept as evidence when a try did not connect, and packet captures on request.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { systemTool } from './host.ts';
import { FORWARD_ONLY, renderRuleset, type NatType } from './nat.ts';
import { conntrackFlush, conntrackList, nftList, nftLoad } from './netns.ts';
import type { Side } from './plan.ts';
import { startDaemon } from './supervise.ts';
import type { Teardown } from './teardown.ts';

/**
 * Give a side's routers the ruleset(s) of `nat` and empty conntrack tables. A double NAT puts its
 * carrier layer on the side's router and its home layer on the home router; a single NAT on a
 * two-layer side runs on the outer router while the home router only forwards.
 */
export async function resetRouter(side: Side, nat: NatType): Promise<void> {
  const carrier = nat.layers?.carrier ?? nat;
  const home = nat.layers?.home;
  if (home && !side.inner) throw new Error(`${nat.name} is a double NAT, but ${side.router} has no home router behind it`);
  const net = (ip: string, prefix: number) => `${ip.split('.').slice(0, 3).join('.')}.0/${prefix}`;
  const base = { WAN: side.wanIf, LAN: side.lanIf, HOST_IP: side.hostIp, HOST_PORT: side.hostPort, DMZ_PORT: side.dmzPort, ...(side.publicIp ? { PUBLIC_IP: side.publicIp } : {}) };
  const loads = [nftLoad(side.router, renderRuleset(carrier, { ...base, WAN_IP: side.wanIp, LAN_NET: net(side.lanIp, side.lanPrefix) }))];
  if (side.inner) {
    const vars = { ...base, WAN_IP: side.inner.wanIp, LAN_NET: net(side.inner.lanIp, side.inner.lanPrefix) };
    loads.push(nftLoad(side.inner.router, home ? renderRuleset(home, vars) : FORWARD_ONLY));
  }
  // new rulesets first (they flush the dynamic maps), then forget every NAT binding of the previous try
  await Promise.all(loads);
  await Promise.all([conntrackFlush(side.router), ...(side.inner ? [conntrackFlush(side.inner.router)] : [])]);
}

/** router-<side>.nft and router-<side>.conntrack (and -home.* on a two-layer side) into `dir`. */
export async function snapshotRouter(side: Side, dir: string): Promise<void> {
  const routers: Array<[string, string]> = [[side.router, `router-${side.role}`]];
  if (side.inner) routers.push([side.inner.router, `router-${side.role}-home`]);
  for (const [ns, name] of routers) {
    const [nft, ct] = await Promise.allSettled([nftList(ns), conntrackList(ns)]);
    const text = (r: PromiseSettledResult<string>) => (r.status === 'fulfilled' ? r.value + '\n' : `could not read: ${(r.reason as Error).message}\n`);
    writeFileSync(join(dir, `${name}.nft`), text(nft));
    writeFileSync(join(dir, `${name}.conntrack`), text(ct));
  }
}

const CAPTURE_READY_MS = 5000;

/** Capture one router interface into router-<side>-<dev>.pcap; resolves, once tcpdump is listening,
 * to a function that stops it (SIGINT, so it flushes the file). */
export async function startCapture(side: Side, dev: string, dir: string, teardown: Teardown): Promise<() => Promise<void>> {
  const name = `router-${side.role}-${dev}`;
  const argv = [systemTool('tcpdump'), '-i', dev, '-n', '-s', '0', '-U', '--immediate-mode', '-Z', 'root', '-w', join(dir, `${name}.pcap`)];
  const d = startDaemon(side.router, argv, {
    label: `tcpdump on ${side.router}/${dev}`,
    stderrFile: join(dir, `${name}.tcpdump.log`),
    watch: 'stderr',
    isReady: (printed) => printed.includes('listening on'),
    readyTimeoutMs: CAPTURE_READY_MS,
    teardown,
  });
  await d.ready;
  // SIGINT: tcpdump flushes the capture file and exits
  return () => d.stop('SIGINT');
}
