// Scenarios are data: which NAT types stand on side A (rows) and side B (columns), how often to try each
// pairing, how long a punch may take, which agent to run, and what every pairing is expected to do.
// This module validates that data (zod) and finds scenario files by name.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { expectedByModel, MODELS } from './model.ts';
import { findNat, knownNats, type NatType } from './nat.ts';
import { PATHS, type Expected } from './types.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SCENARIO_DIR = resolve(ROOT, 'scenarios');
export const DEFAULT_AGENT = {
  peer: resolve(ROOT, 'agents/udp-punch/peer.ts'),
  rendezvous: resolve(ROOT, 'agents/udp-punch/rendezvous.ts'),
};

/** A problem with what the user asked for (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Column name for a peer on the same site as the row's peer: a second host behind the same NAT. */
export const SAME_SITE = 'same-site';

const natName = z.string().superRefine((name, ctx) => {
  if (name !== SAME_SITE && !findNat(name)) {
    const hint = name.includes('+') ? '; a double NAT is "home+carrier", two known types other than dmz' : '';
    ctx.addIssue({ code: 'custom', message: `unknown NAT type "${name}" (known: ${knownNats()}${hint})` });
  }
});

const expected = z.enum(['direct', 'relayed', 'failed', ...PATHS]);

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
    agent: z.object({ peer: z.string().min(1), rendezvous: z.string().min(1) }).strict().optional(),
    /** the agent's steps, in the order it tries them (e.g. direct-udp, direct-tcp, relayed): the report
     * counts how many cells each later step rescued, and the harness gives a try one punch window per step */
    strategy: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/, 'a path name: lower-case letters, digits and dashes')).min(1).optional(),
    /** run the TLS relay (agents/relay) beside the rendezvous; peers get NMX_RELAY and NMX_RELAY_CA */
    relay: z.boolean().default(false),
    /** derive every expectation not given in `expect` from this model (harness/model.ts) */
    expectModel: z.enum(MODELS).optional(),
    expect: z.record(z.string(), z.record(z.string(), expected)).default({}),
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
    for (const a of s.a) {
      for (const b of s.b) {
        if (s.expect[a]?.[b] === undefined && s.expectModel === undefined) {
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

export interface Scenario extends ScenarioData {
  /** absolute path of the file it came from */
  file: string;
  agent: { peer: string; rendezvous: string };
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

/** A pairing's expected outcome: the scenario's own word for it, else its model's. */
export function expectedOf(s: ScenarioData, a: string, b: string): Expected {
  const e = s.expect[a]?.[b];
  if (e !== undefined) return e;
  const [na, nb] = [findNat(a), findNat(b)];
  // two hosts behind one NAT reach each other's external endpoints only through hairpinning
  if (s.expectModel !== undefined && na && b === SAME_SITE) return na.hairpin ? 'direct' : 'failed';
  if (s.expectModel !== undefined && na && nb) return expectedByModel(s.expectModel, na, nb);
  throw new Error(`no expectation for ${a} × ${b}`);
}

/** Validate raw data; throws UsageError with one line naming each bad field. */
export function parseScenario(raw: unknown, file: string): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new UsageError(`malformed scenario ${file}: ${issues.join('; ')}`);
  }
  const dir = dirname(file);
  const agent = r.data.agent
    ? { peer: resolve(dir, r.data.agent.peer), rendezvous: resolve(dir, r.data.agent.rendezvous) }
    : DEFAULT_AGENT;
  return { ...r.data, file, agent };
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
