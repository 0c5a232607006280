// Scenarios are data: which NAT types stand on side A (rows) and side B (columns), how often to try each
// pairing, how long a punch may take, which agent to run, and what every pairing is expected to do.
// This module validates that data (zod) and finds scenario files by name.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { issueLines, UsageError } from './errors.ts';
import { expectationSchema, expectedByExpectationModel, type Expectation } from './expect.ts';
import { agentFieldsSchema, agentFromPath, checkAgentNames, RENDEZVOUS_SCOPES, SERVICES, specOf, type AgentDefaults, type AgentSpec } from './manifest.ts';
import { expectedByModel, MODELS } from './model.ts';
import { findNat, knownNats, type NatType } from './nat.ts';

export { UsageError };

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SCENARIO_DIR = resolve(ROOT, 'scenarios');
/** The agent of a scenario that names none: the shipped UDP hole puncher and its rendezvous. */
export const DEFAULT_AGENT = {
  peer: resolve(ROOT, 'agents/udp-punch/peer.ts'),
  rendezvous: resolve(ROOT, 'agents/udp-punch/rendezvous.ts'),
};

/** How many routers the internet bridge stands for by default: real NATs are rarely closer than this,
 * so a packet sent with a TTL meant to open only its own NAT (hyperdht's 5) must not reach the peer. */
export const DEFAULT_INTERNET_HOPS = 8;

/** Column name for a peer on the same site as the row's peer: a second host behind the same NAT. */
export const SAME_SITE = 'same-site';

const natName = z.string().superRefine((name, ctx) => {
  if (name !== SAME_SITE && !findNat(name)) {
    const hint = name.includes('+') ? '; a double NAT is "home+carrier", two known types other than dmz' : '';
    ctx.addIssue({ code: 'custom', message: `unknown NAT type "${name}" (known: ${knownNats()}${hint})` });
  }
});


export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'use lower-case letters, digits and dashes'),
    description: z.string().min(1),
    a: z.array(natName).min(1, 'side A needs at least one NAT type'),
    b: z.array(natName).min(1, 'side B needs at least one NAT type'),
    tries: z.number().int().min(1).max(1000).default(1),
    timeoutMs: z.number().int().min(50).max(600_000).default(1000),
    /** after a direct path is confirmed, keep it idle this long and check it still works (binding lifetime) */
    holdMs: z.number().int().min(0).max(600_000).default(0),
    /** while holding, the agents send a keepalive this often (0: none) */
    keepaliveMs: z.number().int().min(0).max(600_000).default(0),
    /** the agent: peer and rendezvous executables, or a path to a manifest (or to a peer executable) */
    agent: z.union([z.object({ peer: z.string().min(1), rendezvous: z.string().min(1) }).strict(), z.string().min(1)], { error: 'the path of an agent manifest (or peer executable), or { "peer": path, "rendezvous": path }' }).optional(),
    /** several agents, run side by side on the same routers: name → manifest path, or manifest fields */
    agents: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'agent names: lower-case letters, digits and dashes'), z.union([z.string().min(1), agentFieldsSchema])).optional(),
    /** run services the agents get (NMX_STUN…, NMX_TURN…, NMX_RELAY…) */
    services: z.array(z.enum(SERVICES)).default([]),
    /** one rendezvous per run (default), per lane, or per try; an agent's manifest may ask for its own */
    rendezvousScope: z.enum(RENDEZVOUS_SCOPES).optional(),
    /** report what happens without expectations: the run exits 0 unless something errored */
    observe: z.boolean().default(false),
    /** routers the internet stands for: packets with a TTL of this or less die on the internet bridge (0: off) */
    internetHops: z.number().int().min(0).max(64).default(DEFAULT_INTERNET_HOPS),
    /** the agent's steps, in the order it tries them (e.g. direct-udp, direct-tcp, relayed): the report
     * counts how many cells each later step rescued, and the harness gives a try one punch window per step */
    strategy: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/, 'a path name: lower-case letters, digits and dashes')).min(1).optional(),
    /** run the TLS relay (agents/relay) beside the rendezvous; peers get NMX_RELAY and NMX_RELAY_CA */
    relay: z.boolean().default(false),
    /** derive every expectation not given in `expect` from this model (harness/model.ts) */
    expectModel: z.enum(MODELS).optional(),
    expect: z.record(z.string(), z.record(z.string(), expectationSchema)).default({}),
  })
  .strict()
  .superRefine((s, ctx) => {
    s.a.forEach((n, i) => {
      if (n === SAME_SITE) ctx.addIssue({ code: 'custom', path: ['a', i], message: `"${SAME_SITE}" is a column (side B): the second host behind the row's NAT` });
    });
    for (const side of ['a', 'b'] as const) {
      const seen = new Set<string>();
      s[side].forEach((n, i) => {
        const canonical = findNat(n)?.name ?? n;
        if (seen.has(canonical)) ctx.addIssue({ code: 'custom', path: [side, i], message: `"${n}" appears twice on side ${side.toUpperCase()}` });
        seen.add(canonical);
      });
    }
    if (s.agent !== undefined && s.agents !== undefined) ctx.addIssue({ code: 'custom', path: ['agents'], message: 'give either agent or agents, not both' });
    // agents from manifests may bring their own expectations: checked once they are read (plan)
    const agentsMayExpect = s.agents !== undefined || typeof s.agent === 'string';
    for (const a of s.a) {
      for (const b of s.b) {
        if (s.expect[a]?.[b] === undefined && s.expectModel === undefined && !s.observe && !agentsMayExpect) {
          ctx.addIssue({ code: 'custom', path: ['expect', a], message: `no expected outcome for ${a} × ${b} (add expect["${a}"]["${b}"]: "direct" | "relayed" | "failed" | a path, or an expectModel)` });
        }
      }
    }
    for (const [a, row] of Object.entries(s.expect)) {
      if (!s.a.includes(a)) ctx.addIssue({ code: 'custom', path: ['expect', a], message: `"${a}" is not on side A (${s.a.join(', ')})` });
      for (const b of Object.keys(row)) {
        if (!s.b.includes(b)) ctx.addIssue({ code: 'custom', path: ['expect', a, b], message: `"${b}" is not on side B (${s.b.join(', ')})` });
      }
    }
  });

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type ScenarioData = z.output<typeof scenarioSchema>;

export interface Scenario extends Omit<ScenarioData, 'agent' | 'agents'> {
  /** absolute path of the file it came from */
  file: string;
  /** the agents, resolved (one unless the scenario names several) */
  agents: AgentSpec[];
  /** what the scenario sets for every agent (a replacement agent from the command line gets them too) */
  agentDefaults: AgentDefaults;
}

/** The distinct NAT types a scenario builds (the "same-site" column is a placement, not a type). */
export function natTypesOf(s: Pick<ScenarioData, 'a' | 'b'>): NatType[] {
  const types = [...s.a, ...s.b].filter((n) => n !== SAME_SITE).map((n) => findNat(n)!);
  return [...new Map(types.map((t) => [t.name, t])).values()];
}

/** Typed identity for scenario files: `export default defineScenario({...})`. */
export function defineScenario(s: ScenarioInput): ScenarioInput {
  return s;
}

/**
 * What a pairing is expected to come to for one agent: nothing in observe-only mode; else the agent's
 * own expectation model (its manifest's) when it brings one; else the scenario's word for the cell;
 * else the scenario's model. Two hosts behind one NAT ("same-site") reach each other's external
 * endpoints only through hairpinning, whatever the model.
 */
export function expectedOf(s: Pick<ScenarioData, 'expect' | 'expectModel' | 'observe'>, a: string, b: string, agent?: Pick<AgentSpec, 'name' | 'model'>, observe = false): Expectation {
  if (observe || s.observe) return null;
  const [na, nb] = [findNat(a), findNat(b)];
  if (agent?.model) {
    if (na && b === SAME_SITE) return na.hairpin ? 'direct' : 'failed';
    const e = na && nb ? expectedByExpectationModel(agent.model, na, nb) : undefined;
    if (e !== undefined) return e;
    throw new UsageError(`agent ${agent.name}'s expectation model has no rule for ${a} × ${b}: add one (a rule without a and b is a default)`);
  }
  const e = s.expect[a]?.[b];
  if (e !== undefined) return e;
  if (s.expectModel !== undefined && na && b === SAME_SITE) return na.hairpin ? 'direct' : 'failed';
  if (s.expectModel !== undefined && na && nb) return expectedByModel(s.expectModel, na, nb);
  throw new UsageError(`no expected outcome for ${a} × ${b}${agent ? ` (agent ${agent.name} brings no expectation model)` : ''}: add expect["${a}"]["${b}"], an expectModel, or run with --observe`);
}

/** Validate raw data; throws UsageError with one line naming each bad field. */
export function parseScenario(raw: unknown, file: string): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) {
    throw new UsageError(`malformed scenario ${file}: ${issueLines(r.error.issues).join('; ')}`);
  }
  const dir = dirname(file);
  const { agent, agents, ...rest } = r.data;
  const legacy = agent !== undefined && typeof agent === 'object' ? agent : undefined;
  const agentDefaults: AgentDefaults = {
    rendezvous: legacy ? resolve(dir, legacy.rendezvous) : DEFAULT_AGENT.rendezvous,
    rendezvousScope: r.data.rendezvousScope,
    services: [...new Set([...r.data.services, ...(r.data.relay ? (['relay'] as const) : [])])].sort(),
    strategy: r.data.strategy,
  };
  let specs: AgentSpec[];
  if (agents) {
    specs = Object.entries(agents).map(([name, entry]) =>
      typeof entry === 'string' ? agentFromPath(resolve(dir, entry), agentDefaults, name) : specOf(entry, dir, file, agentDefaults, name),
    );
  } else if (typeof agent === 'string') {
    specs = [agentFromPath(resolve(dir, agent), agentDefaults)];
  } else {
    specs = [specOf({ peer: legacy ? legacy.peer : DEFAULT_AGENT.peer }, legacy ? dir : ROOT, file, agentDefaults)];
  }
  checkAgentNames(specs);
  return { ...rest, file, agents: specs, agentDefaults };
}

export function listScenarios(): string[] {
  return readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Find a scenario by name (scenarios/NAME.ts) or path (.ts, .js, .mjs, .json) and validate it. */
export async function loadScenario(nameOrPath: string): Promise<Scenario> {
  const looksLikePath = nameOrPath.includes('/') || ['.ts', '.js', '.mjs', '.json'].includes(extname(nameOrPath));
  const file = looksLikePath
    ? isAbsolute(nameOrPath) ? nameOrPath : resolve(process.cwd(), nameOrPath)
    : resolve(SCENARIO_DIR, `${nameOrPath}.ts`);
  if (!existsSync(file)) {
    throw new UsageError(
      looksLikePath
        ? `scenario file not found: ${file}`
        : `unknown scenario "${nameOrPath}" (known: ${listScenarios().join(', ')}; or give a path to a scenario file)`,
    );
  }
  let raw: unknown;
  try {
    const mod = (await import(pathToFileURL(file).href, extname(file) === '.json' ? { with: { type: 'json' } } : undefined)) as { default?: unknown };
    raw = mod.default;
  } catch (cause) {
    throw new UsageError(`cannot load scenario ${file}: ${(cause as Error).message.split('\n')[0]}`, { cause });
  }
  if (raw === undefined) throw new UsageError(`scenario ${file} has no default export (use \`export default defineScenario({...})\`)`);
  return parseScenario(raw, file);
}
