// classify: what does each router really do? An RFC 5780-style discovery — a probe server on the
// rendezvous node's two public addresses × two ports, a probe client behind the router — measures the
// mapping and filtering behaviour of every NAT type and compares it with what the registry declares.
// Used by `npm run classify` and by `npm run scenario … -- --verify`, which refuses to report a matrix
// whose routers don't behave as declared.
import { join } from 'node:path';
import { agentCommand } from './agent.ts';
import type { Lab } from './lab.ts';
import { DEFAULT_LIFETIME_S, portAllocationOf, type NatType, type PortAllocation } from './nat.ts';
import type { Side } from './plan.ts';
import { RunError } from './errors.ts';
import { resetRouter } from './router.ts';
import { startDaemon, startTracked } from './supervise.ts';
import { ROOT } from './scenario.ts';
import type { Teardown } from './teardown.ts';
import type { Filtering, Mapping } from './types.ts';

// clear of 3478 (the rendezvous) and of 3478–3479, where coturn listens in the oracle test
const PROBE_PORTS = [3480, 3481];
const PROBE_TIMEOUT_MS = 10_000;

export interface Classification {
  nat: string;
  /** lifetimeS: the UDP binding lifetime the router is configured with (not measured) */
  declared: { mapping: Mapping; filtering: Filtering; hairpinning: boolean; ports: PortAllocation; lifetimeS: number };
  measured: { mapping: Mapping | null; filtering: Filtering | null; portPreserved: boolean | null; hairpinning: boolean | null };
  /** the mapped addresses the probe server saw, per phase */
  mapped: { mapping: string[]; filtering: string[] };
  matches: boolean;
  /** why a phase gave no answer, if one did not */
  problem: string | null;
}

interface PhaseResult {
  ok: boolean;
  mapping?: Mapping;
  filtering?: Filtering;
  portPreserved?: boolean;
  hairpin?: boolean;
  mapped?: string[];
  reason?: string;
}

async function runPhase(side: Side, phase: 'mapping' | 'filtering' | 'hairpin', cmd: string[], env: Record<string, string>, dir: string, teardown: Teardown): Promise<PhaseResult> {
  const opts = {
    env: { ...env, NMX_PROBE_PHASE: phase, NMX_LOCAL_PORT: String(side.hostPort) },
    stderrFile: join(dir, `classify-${side.router.split('-').at(-1)}-${phase}.log`),
    timeoutMs: PROBE_TIMEOUT_MS,
  };
  const r = await startTracked(side.host, cmd, opts, teardown, 'probe client').done;
  try {
    return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as PhaseResult;
  } catch {
    return { ok: false, reason: `probe client ${r.timedOut ? 'hung' : `exited ${r.exitCode ?? r.signal}`} without a result: ${r.stderr.trim().split('\n').at(-1) ?? ''}` };
  }
}

/** Classify one router: each phase on fresh NAT state (ruleset reloaded, conntrack flushed). */
async function classifyRouter(side: Side, nat: NatType, cmd: string[], env: Record<string, string>, dir: string, teardown: Teardown): Promise<Classification> {
  await resetRouter(side, nat);
  const m = await runPhase(side, 'mapping', cmd, env, dir, teardown);
  await resetRouter(side, nat);
  const f = await runPhase(side, 'filtering', cmd, env, dir, teardown);
  await resetRouter(side, nat);
  const h = await runPhase(side, 'hairpin', cmd, env, dir, teardown);
  const measured = { mapping: m.mapping ?? null, filtering: f.filtering ?? null, portPreserved: m.portPreserved ?? null, hairpinning: h.hairpin ?? null };
  const declared = {
    mapping: nat.mapping,
    filtering: nat.filtering,
    hairpinning: nat.hairpin ?? false,
    ports: portAllocationOf(nat),
    lifetimeS: nat.lifetimeS ?? DEFAULT_LIFETIME_S,
  };
  return {
    nat: nat.name,
    declared,
    measured,
    mapped: { mapping: m.mapped ?? [], filtering: f.mapped ?? [] },
    matches:
      measured.mapping === declared.mapping &&
      measured.filtering === declared.filtering &&
      measured.hairpinning === declared.hairpinning &&
      measured.portPreserved === (declared.ports === 'preserve'),
    problem: [m, f, h].map((x) => (x.ok ? null : x.reason ?? 'no result')).filter(Boolean).join('; ') || null,
  };
}

/** Classify `types` on the lab's lanes (side A of each), with a probe server on the rendezvous node. */
export async function classifyOnLab(lab: Lab, types: NatType[], teardown: Teardown, outDir: string): Promise<Classification[]> {
  const { rendezvous } = lab.plan;
  const addrs = `${rendezvous.ip},${rendezvous.altIp}`;
  const env = { NMX_PROBE_ADDRS: addrs, NMX_PROBE_PORTS: PROBE_PORTS.join(',') };
  const [serverCmd, clientCmd] = await Promise.all([
    agentCommand(join(ROOT, 'agents/probe/server.ts')),
    agentCommand(join(ROOT, 'agents/probe/client.ts')),
  ]);
  const server = startDaemon(rendezvous.ns, serverCmd, {
    label: 'the probe server',
    env,
    stderrFile: join(outDir, 'classify-server.log'),
    watch: 'stdout',
    isReady: (printed) => printed.includes('"ready":true'),
    readyTimeoutMs: 5000,
    teardown,
  });
  try {
    await server.ready;
    const queue = types.map((t, i) => ({ t, i }));
    const results: Classification[] = [];
    await Promise.all(
      lab.plan.lanes.map(async (lane) => {
        await lab.laneReady(lane.index);
        for (let job = queue.shift(); job; job = queue.shift()) {
          // a double NAT needs a side with a home router; single types are measured on side A
          const side = job.t.layers ? [lane.a, lane.b].find((x) => x.inner) : lane.a;
          if (!side) throw new RunError(`${job.t.name} is a double NAT, but the lab has no two-layer side to measure it on`);
          results[job.i] = await classifyRouter(side, job.t, clientCmd, env, outDir, teardown);
        }
      }),
    );
    return results;
  } catch (cause) {
    throw cause instanceof RunError ? cause : new RunError(`classification failed: ${(cause as Error).message}`, { cause });
  } finally {
    await server.stop();
  }
}

const short: Record<Mapping, string> = {
  'endpoint-independent': 'EI',
  'address-dependent': 'AD',
  'address-and-port-dependent': 'APD',
};

/** A table: NAT, declared mapping/filtering, measured, port preservation, verdict. */
export function renderClassification(results: Classification[]): string {
  const yesNo = (x: boolean | null) => (x === null ? '?' : x ? 'yes' : 'no');
  const rows = [['NAT', 'declared (mapping/filtering, hairpin)', 'measured', 'port preserved (allocation)', 'binding lifetime', '']];
  for (const r of results) {
    const m = r.measured;
    rows.push([
      r.nat,
      `${short[r.declared.mapping]} / ${short[r.declared.filtering]}, ${yesNo(r.declared.hairpinning)}`,
      m.mapping && m.filtering ? `${short[m.mapping]} / ${short[m.filtering]}, ${yesNo(m.hairpinning)}` : `? (${r.problem})`,
      `${yesNo(m.portPreserved)} (${r.declared.ports})`,
      `${r.declared.lifetimeS} s (configured)`,
      r.matches ? '✓' : '✗ differs',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** One line per router that does not behave as declared. */
export function misbehaving(results: Classification[]): string[] {
  return results
    .filter((r) => !r.matches)
    .map((r) =>
      `${r.nat} is declared ${r.declared.mapping} mapping / ${r.declared.filtering} filtering` +
      `${r.declared.hairpinning ? ' / hairpinning' : ''}${r.declared.ports === 'preserve' ? ' / port-preserving' : ''} but measured ` +
      (r.measured.mapping && r.measured.filtering
        ? `${r.measured.mapping} / ${r.measured.filtering}${r.measured.hairpinning ? ' / hairpinning' : ''}${r.measured.portPreserved ? ' / port-preserving' : ''}`
        : `nothing (${r.problem})`),
    );
}
