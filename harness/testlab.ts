// The library's lower layer: one lane of a lab, built for a custom test and driven by it.
//
//                 nmx-<run>-inet: bridge 203.0.113.1/24 ("the internet", no route anywhere else)
//        ┌──────────────────────────┼──────────────────────────┐
//   lab.node('public')        lab.router('a')              lab.router('b')
//   nmx-<run>-rdv             nmx-<run>-0ra                nmx-<run>-0rb
//   203.0.113.10 (.11–.13)    wan 203.0.113.20, NAT `a`    wan 203.0.113.21, NAT `b`
//                             lan 10.0.1.1/24              lan 192.168.2.1/24
//                                   │                            │
//                             lab.node('a')                lab.node('b')
//                             nmx-<run>-0ha 10.0.1.10      nmx-<run>-0hb 192.168.2.10
//
//   await using lab = await buildLab({ a: 'symmetric', b: 'full-cone' });
//   const server = lab.spawn('b', ['node', 'server.mjs'], { env: { PORT: '4000' } });
//   const r = await lab.exec('a', ['node', 'client.mjs', lab.router('b').wanIp]);
//   console.log(await lab.router('a').conntrack());
//
// The same lifecycle and host-safety guarantees as the scenario command: namespaces only (nothing in
// the host's root namespace), TEST-NET addresses only, run-scoped names, every resource's undo
// registered the moment it exists, and the teardown on dispose, on a failed build and on SIGINT,
// SIGTERM and SIGHUP. Processes spawned into the lab are ended (their whole process group) with it.
import { findNat, type NatType } from './nat.ts';
import { DEFAULT_INTERNET_HOPS, unknownNatMessage } from './scenario.ts';
import { EXIT, LeftoverError, UsageError } from './errors.ts';
import { preflight } from './host.ts';
import { buildTopology } from './lab.ts';
import { conntrackFlush, conntrackList, nftList } from './netns.ts';
import { layersOf, newRunId, topologyPlan, type Plan, type Side } from './plan.ts';
import { resetRouter } from './router.ts';
import { startTracked } from './supervise.ts';
import { reveals } from './confine.ts';
import { Teardown, unwindOnSignals } from './teardown.ts';
import type { ProcResult } from './proc.ts';

export { EXIT };

export interface LabOptions {
  /** NAT type in front of host a, by name (`natmatrix classify` lists them; knobs as in scenarios) */
  a: string;
  /** NAT type in front of host b */
  b: string;
  /** routers the internet stands for: packets with a TTL of this or less die on it (default 8, 0 off) */
  internetHops?: number;
  /** SIGINT, SIGTERM and SIGHUP tear the lab down, then end the process (default true) */
  handleSignals?: boolean;
}

export type LabNode = 'a' | 'b' | 'public';

export interface SpawnOptions {
  /** added to the environment the process inherits */
  env?: Record<string, string>;
  /** text on its stdin (default: none, stdin is /dev/null) */
  input?: string;
  /** end it (SIGTERM to its group, SIGKILL 300 ms later) after this long; the result says timedOut */
  timeoutMs?: number;
  /** run it as the unprivileged agent user in PID and mount namespaces of its own, as the scenario
   * command runs agents (default false: as the calling process's user, root) */
  confine?: boolean;
  /** called with its output as it arrives */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

export interface LabProcess {
  pid: number | undefined;
  /** its end: exit code or signal, and everything it printed */
  done: Promise<ProcResult>;
  /** end it and its process group (SIGTERM, then SIGKILL); resolves once gone */
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export interface LabRouter {
  /** the router's namespace */
  ns: string;
  nat: NatType;
  /** its public address */
  wanIp: string;
  /** its LAN address (the host's gateway) */
  lanIp: string;
  /** its conntrack table, as `conntrack -L` prints it */
  conntrack: () => Promise<string>;
  /** its nftables ruleset, as `nft list ruleset` prints it */
  ruleset: () => Promise<string>;
  /** a fresh NAT: the ruleset reloaded and conntrack emptied (every binding forgotten) */
  reset: () => Promise<void>;
  /** empty its conntrack table only */
  flush: () => Promise<void>;
}

export interface NatLab extends AsyncDisposable {
  runId: string;
  /** the plan the lab was built from (written by the scenario command as topology.json) */
  plan: Plan;
  /** the namespace and address of a node: a host behind its NAT, or the public node on the internet */
  node: (name: LabNode) => { ns: string; ip: string };
  router: (side: 'a' | 'b') => LabRouter;
  /** start a process inside a node; ended with the lab if still running */
  spawn: (node: LabNode, argv: string[], options?: SpawnOptions) => LabProcess;
  /** run a process inside a node to its end */
  exec: (node: LabNode, argv: string[], options?: SpawnOptions) => Promise<ProcResult>;
  /** tear everything down (also what `await using` does); a LeftoverError says what could not be removed */
  close: () => Promise<void>;
}

function natOf(name: string, side: 'a' | 'b'): NatType {
  const nat = findNat(name);
  if (!nat) throw new UsageError(unknownNatMessage(name, ` for ${side}`));
  return nat;
}

/**
 * Build one lane — host a behind NAT `a`, host b behind NAT `b`, both routers on an internet with a
 * public node — and return it to drive. Needs root. Dispose of it (`await using`, or `close()`) to tear
 * it down.
 */
export async function buildLab(options: LabOptions): Promise<NatLab> {
  const nats = { a: natOf(options.a, 'a'), b: natOf(options.b, 'b') };
  const hops = options.internetHops ?? DEFAULT_INTERNET_HOPS;
  if (!Number.isSafeInteger(hops) || hops < 0 || hops > 64) throw new UsageError(`internetHops must be a whole number from 0 to 64, not ${hops}`);
  preflight();
  const p: Plan = { ...topologyPlan('lab', 1, newRunId(), layersOf({ a: [nats.a.name], b: [nats.b.name] })), internetHops: hops };
  const lane = p.lanes[0]!;
  const teardown = new Teardown();
  const unguard = options.handleSignals === false ? async () => {} : unwindOnSignals(teardown, undefined, p.runId, 'natmatrix lab');
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= teardown.unwind().then(async (errors) => {
      await unguard();
      if (errors.length) throw new LeftoverError(errors, p.runId);
    }));
  try {
    const topo = await buildTopology(p, teardown);
    await topo.laneReady(0);
    await Promise.all([resetRouter(lane.a, nats.a), resetRouter(lane.b, nats.b)]);
  } catch (e) {
    await close().catch((leftover: LeftoverError) => {
      throw new LeftoverError(leftover.errors, p.runId, { cause: e });
    });
    throw e;
  }

  const sides: Record<'a' | 'b', Side> = { a: lane.a, b: lane.b };
  const node = (name: LabNode) => {
    if (name === 'public') return { ns: p.rendezvous.ns, ip: p.rendezvous.ip };
    const s = sides[name];
    if (!s) throw new UsageError(`no node "${String(name)}" in the lab (nodes: a, b, public)`);
    return { ns: s.host, ip: s.hostIp };
  };
  const router = (side: 'a' | 'b'): LabRouter => {
    const s = sides[side];
    if (!s) throw new UsageError(`no router "${String(side)}" in the lab (routers: a, b)`);
    return {
      ns: s.router,
      nat: nats[side],
      wanIp: s.wanIp,
      lanIp: s.inner ? s.inner.lanIp : s.lanIp,
      conntrack: () => conntrackList(s.router),
      ruleset: () => nftList(s.router),
      reset: () => resetRouter(s, nats[side]),
      flush: () => conntrackFlush(s.router).then(() => undefined),
    };
  };
  let spawned = 0;
  const spawn = (name: LabNode, argv: string[], o: SpawnOptions = {}): LabProcess => {
    if (closing) throw new Error(`lab ${p.runId} is closed`);
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) throw new UsageError('spawn needs an argv array of strings, e.g. ["node", "peer.mjs"]');
    const { ns } = node(name);
    const label = `${argv[0]} #${++spawned} in ${name}`;
    const proc = startTracked(
      ns,
      argv,
      {
        env: o.env ?? {},
        ...(o.input !== undefined ? { input: o.input } : {}),
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs, killGraceMs: 300 } : {}),
        ...(o.onStdout ? { onStdout: o.onStdout } : {}),
        ...(o.onStderr ? { onStderr: o.onStderr } : {}),
        pipeGraceMs: 500,
        confine: o.confine ? { files: [], reveal: reveals(argv[0]!, [argv]) } : null,
      },
      teardown,
      label,
    );
    return { pid: proc.pid, done: proc.done, stop: proc.stop };
  };
  return {
    runId: p.runId,
    plan: p,
    node,
    router,
    spawn,
    exec: (name, argv, o) => spawn(name, argv, o).done,
    close,
    [Symbol.asyncDispose]: close,
  };
}
