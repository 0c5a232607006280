// Routers during a run: a fresh NAT for every try (ruleset reloaded, conntrack emptied), their state
// kept as evidence when a try did not connect, and packet captures on request. A run's lanes do both
// through a helper per router (routerd.py), started once: no process is started per try.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemTool, which } from './host.ts';
import { FORWARD_ONLY, renderRuleset, type NatType } from './nat.ts';
import { CommandError, conntrackFlush, conntrackList, nftList, nftLoad } from './netns.ts';
import { packagePath } from './package.ts';
import type { Side } from './plan.ts';
import type { Proc } from './proc.ts';
import { startDaemon, startTracked } from './supervise.ts';
import type { Teardown } from './teardown.ts';

/** The ruleset(s) of `nat` on a side's routers: [router namespace, ruleset]. A double NAT puts its
 * carrier layer on the side's router and its home layer on the home router; a single NAT on a
 * two-layer side runs on the outer router while the home router only forwards. */
function rulesets(side: Side, nat: NatType): Array<[string, string]> {
  const carrier = nat.layers?.carrier ?? nat;
  const home = nat.layers?.home;
  if (home && !side.inner) throw new Error(`${nat.name} is a double NAT, but ${side.router} has no home router behind it`);
  const net = (ip: string, prefix: number) => `${ip.split('.').slice(0, 3).join('.')}.0/${prefix}`;
  const base = { WAN: side.wanIf, LAN: side.lanIf, HOST_IP: side.hostIp, HOST_PORT: side.hostPort, DMZ_PORT: side.dmzPort, ...(side.publicIp ? { PUBLIC_IP: side.publicIp } : {}) };
  const out: Array<[string, string]> = [[side.router, renderRuleset(carrier, { ...base, WAN_IP: side.wanIp, LAN_NET: net(side.lanIp, side.lanPrefix) })]];
  if (side.inner) {
    const vars = { ...base, WAN_IP: side.inner.wanIp, LAN_NET: net(side.inner.lanIp, side.inner.lanPrefix) };
    out.push([side.inner.router, home ? renderRuleset(home, vars) : FORWARD_ONLY]);
  }
  return out;
}

const ROUTERD = packagePath('harness', 'routerd.py');
/** How long a router helper may take to say whether it can work. */
const HELPER_READY_MS = 10_000;

/**
 * Give a side's routers the ruleset(s) of `nat` and empty conntrack tables: through their helpers
 * (RouterHelpers, a run's lanes) or with a process per step (a lab's occasional reset). No agent runs
 * meanwhile, so each router is reset on its own: its new ruleset (which flushes the dynamic maps), then
 * its conntrack table (every NAT binding of the previous try).
 */
export async function resetRouter(side: Side, nat: NatType, helpers?: RouterHelpers): Promise<void> {
  await Promise.all(
    rulesets(side, nat).map(async ([ns, ruleset]) => {
      if (helpers && (await helpers.reset(ns, ruleset))) return;
      await nftLoad(ns, ruleset);
      await conntrackFlush(ns);
    }),
  );
}

/** A router namespace's helper process (routerd.py): resets and snapshots without a process per step. */
class RouterHelper {
  /** true once it said ready; false when it cannot work here (the caller does without it) */
  readonly ready: Promise<boolean>;
  private readonly proc: Proc;
  private readonly waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private n = 0;
  private line = '';
  private gone: string | null = null;

  constructor(
    readonly ns: string,
    python: string,
    teardown: Teardown,
  ) {
    let said: (ok: boolean) => void = () => {};
    this.ready = new Promise((resolve) => (said = resolve));
    // a helper that does not say whether it can work is one that cannot: it is ended, the router reset
    // with processes
    const silent = setTimeout(() => {
      said(false);
      void this.proc.stop();
    }, HELPER_READY_MS);
    void this.ready.then(() => clearTimeout(silent));
    this.proc = startTracked(ns, [python, '-I', '-S', ROUTERD, systemTool('conntrack')], {
      keepStdin: true,
      collect: false,
      killGraceMs: 300,
      onStdout: (chunk) => {
        this.line += chunk;
        for (let nl = this.line.indexOf('\n'); nl >= 0; nl = this.line.indexOf('\n')) {
          const [id = '', status, ...rest] = this.line.slice(0, nl).split('\t');
          const message = rest.length ? rest.join('\t') : undefined;
          this.line = this.line.slice(nl + 1);
          if (id === 'ready' || id === 'unavailable') {
            said(id === 'ready');
            continue;
          }
          const w = this.waiting.get(id);
          this.waiting.delete(id);
          if (status === 'ok') w?.resolve();
          else w?.reject(new CommandError(`router helper in ${ns}: ${message ?? status ?? 'no answer'}`));
        }
      },
    }, teardown, `router helper in ${ns}`);
    void this.proc.done.then((r) => {
      said(false);
      this.gone = `the router helper in ${ns} ended (${r.spawnError?.message ?? (r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`)})`;
      for (const w of this.waiting.values()) w.reject(new CommandError(this.gone));
      this.waiting.clear();
    });
  }

  /** it ended (killed, crashed): the next request needs a new one */
  get ended(): boolean {
    return this.gone !== null;
  }

  request(fields: string[]): Promise<void> {
    if (this.gone) return Promise.reject(new CommandError(this.gone));
    if (fields.some((f) => /[\t\n]/.test(f))) return Promise.reject(new CommandError(`router helper in ${this.ns}: a tab or newline in ${JSON.stringify(fields)}`));
    const id = String(++this.n);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.proc.stdin!.write(`${[id, ...fields].join('\t')}\n`);
    });
  }

  close(): Promise<unknown> {
    this.proc.stdin?.end();
    return this.proc.done;
  }
}

/**
 * The helpers of a run's routers, one per router namespace, started on first use. Rulesets go to a
 * helper as files in `dir` (rulesets/ in the run folder), one per distinct ruleset, written once.
 * Without python3 (or libnftables) there are none, and resets and snapshots use a process per step.
 */
export class RouterHelpers {
  private readonly helpers = new Map<string, RouterHelper>();
  private readonly written = new Set<string>();
  private readonly python = which('python3');
  private unavailable = false;

  constructor(
    private readonly dir: string,
    private readonly teardown: Teardown,
  ) {}

  /** The router's helper, when it has a working one. */
  private async helper(ns: string): Promise<RouterHelper | null> {
    if (this.python === null || this.unavailable) return null;
    let h = this.helpers.get(ns);
    if (!h || h.ended) {
      h = new RouterHelper(ns, this.python, this.teardown);
      this.helpers.set(ns, h);
    }
    if (await h.ready) return h;
    // it cannot work here (no libnftables, no ctnetlink): no router of the run gets one
    this.unavailable = true;
    return null;
  }

  /** Reset a router through its helper; false when it has none (reset it another way). */
  async reset(ns: string, ruleset: string): Promise<boolean> {
    const file = join(this.dir, `${ns}.${createHash('sha256').update(ruleset).digest('hex').slice(0, 12)}.nft`);
    // the helper's requests are tab-separated lines: a run folder named with a tab or newline goes without
    if (/[\t\n]/.test(file)) return false;
    const h = await this.helper(ns);
    if (!h) return false;
    if (!this.written.has(file)) {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(file, ruleset);
      this.written.add(file);
    }
    await h.request(['reset', file]);
    return true;
  }

  /** Snapshot a router into two files through its helper; false when it has none. */
  async snapshot(ns: string, nftFile: string, ctFile: string): Promise<boolean> {
    if (/[\t\n]/.test(nftFile + ctFile)) return false;
    const h = await this.helper(ns);
    if (!h) return false;
    await h.request(['snapshot', nftFile, ctFile]);
    return true;
  }

  /** End the helpers of these routers (all, without): they exit when their stdin closes. */
  async close(routers?: string[]): Promise<void> {
    const closing = [...this.helpers.values()].filter((h) => !routers || routers.includes(h.ns));
    for (const h of closing) this.helpers.delete(h.ns);
    await Promise.all(closing.map((h) => h.close()));
  }
}

/** router-<side>.nft and router-<side>.conntrack (and -home.* on a two-layer side) into `dir`. */
export async function snapshotRouter(side: Side, dir: string, helpers?: RouterHelpers): Promise<void> {
  const routers: Array<[string, string]> = [[side.router, `router-${side.role}`]];
  if (side.inner) routers.push([side.inner.router, `router-${side.role}-home`]);
  for (const [ns, name] of routers) {
    if (helpers && (await helpers.snapshot(ns, join(dir, `${name}.nft`), join(dir, `${name}.conntrack`)))) continue;
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
