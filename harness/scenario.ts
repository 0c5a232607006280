// Scenarios are data: which NAT types stand on side A (rows) and side B (columns), how often to try each
// pairing, how long a punch may take, which agent to run, and what every pairing is expected to do.
// This module validates that data (zod) and finds scenario files by name.
import { existsSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_DIR } from './package.ts';
import { z } from 'zod';
import { didYouMean, fromUser, userDir } from './args.ts';
import { EXIT, issueLines, UsageError } from './errors.ts';
import { expectationSchema, expectedByExpectationModel, type Expectation } from './expect.ts';
import { agentFieldsSchema, agentFromPath, checkAgentNames, RENDEZVOUS_SCOPES, SERVICES, specOf, type AgentDefaults, type AgentSpec } from './manifest.ts';
import { expectedByModel, MODELS } from './model.ts';
import { findNat, knownNats, natSpellings, type NatType } from './nat.ts';

export { UsageError };

/** natmatrix's own folder (harness/package.ts) */
export const ROOT = PACKAGE_DIR;
export const SCENARIO_DIR = resolve(ROOT, 'scenarios');
/** The agent of a scenario that names none: the shipped UDP hole puncher and its rendezvous, one
 * process per host serving every try (as its manifest says). */
export const DEFAULT_AGENT = {
  peer: resolve(ROOT, 'agents/udp-punch/peer.ts'),
  rendezvous: resolve(ROOT, 'agents/udp-punch/rendezvous.ts'),
  serve: true,
};

/** How many routers the internet bridge stands for by default: real NATs are rarely closer than this,
 * so a packet sent with a TTL meant to open only its own NAT (hyperdht's 5) must not reach the peer. */
export const DEFAULT_INTERNET_HOPS = 8;

/** Column name for a peer on the same site as the row's peer: a second host behind the same NAT. */
export const SAME_SITE = 'same-site';

/** " (did you mean …?)" for a misspelled NAT type: its base name (before knobs), and each layer of a double NAT. */
export function natSuggestion(name: string): string {
  const parts = name.split('+').map((x) => x.split(':')[0]!).filter((x) => !findNat(x));
  return parts.length === 1 ? didYouMean(parts[0]!, natSpellings()) : '';
}

/** The one line for a NAT type name natmatrix does not know (`where`: e.g. " for a"): what it was
 * probably meant to be, and the known ones. */
export function unknownNatMessage(name: string, where = ''): string {
  const hint = name.includes('+') ? '; a double NAT is "home+carrier", two known types other than dmz' : '';
  return `unknown NAT type "${name}"${where}${natSuggestion(name)} (known: ${knownNats()}${hint})`;
}

const natName = z.string().superRefine((name, ctx) => {
  if (name !== SAME_SITE && !findNat(name)) ctx.addIssue({ code: 'custom', message: unknownNatMessage(name) });
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
    agent: z.union([z.object({ peer: z.string().min(1), rendezvous: z.string().min(1), serve: z.boolean().optional() }).strict(), z.string().min(1)], { error: 'the path of an agent manifest (or peer executable), or { "peer": path, "rendezvous": path, "serve"?: boolean }' }).optional(),
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

/**
 * "__proto__" as a key of one of the scenario's records (expect, its rows, agents), which validation would
 * not see: zod drops an own "__proto__" key (JSON.parse makes one), and in an object literal
 * `__proto__: {…}` sets the prototype instead of adding a key. No NAT type, column or agent has that name.
 */
function protoKeyIssues(raw: unknown): string[] {
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const hasProtoKey = (v: Record<string, unknown>) => {
    const proto = Object.getPrototypeOf(v) as unknown;
    return Object.hasOwn(v, '__proto__') || (proto !== Object.prototype && proto !== null);
  };
  if (!isRecord(raw)) return [];
  const side = (k: 'a' | 'b') => (Array.isArray(raw[k]) ? ` (${(raw[k] as unknown[]).map(String).join(', ')})` : '');
  const hint = 'no NAT type has that name (and in an object literal "__proto__:" sets the prototype instead of adding a key)';
  const issues: string[] = [];
  if (isRecord(raw.expect)) {
    if (hasProtoKey(raw.expect)) issues.push(`expect.__proto__: "__proto__" is not on side A${side('a')}; ${hint}`);
    for (const [a, row] of Object.entries(raw.expect)) {
      if (a !== '__proto__' && isRecord(row) && hasProtoKey(row)) issues.push(`expect.${a}.__proto__: "__proto__" is not on side B${side('b')}; ${hint}`);
    }
  }
  if (isRecord(raw.agents) && hasProtoKey(raw.agents)) {
    issues.push('agents.__proto__: "__proto__" cannot name an agent (agent names: lower-case letters, digits and dashes)');
  }
  return issues;
}

/** Validate raw data; throws UsageError with one line naming each bad field. */
export function parseScenario(raw: unknown, file: string): Scenario {
  const r = scenarioSchema.safeParse(raw);
  const hidden = protoKeyIssues(raw);
  if (!r.success || hidden.length > 0) {
    throw new UsageError(`malformed scenario ${file}: ${[...(r.success ? [] : issueLines(r.error.issues)), ...hidden].join('; ')}`);
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
    specs = [specOf(legacy ? { peer: legacy.peer, ...(legacy.serve === undefined ? {} : { serve: legacy.serve }) } : { peer: DEFAULT_AGENT.peer, serve: DEFAULT_AGENT.serve }, legacy ? dir : ROOT, file, agentDefaults)];
  }
  checkAgentNames(specs);
  return { ...rest, file, agents: specs, agentDefaults };
}

/** Where scenario names are looked up: ./scenarios/ in the user's directory (a project of theirs),
 * then natmatrix's own. */
export function scenarioDirs(): string[] {
  const own = resolve(userDir(), 'scenarios');
  return own !== SCENARIO_DIR && existsSync(own) ? [own, SCENARIO_DIR] : [SCENARIO_DIR];
}

/** What a scenario file found by name may be (a user's project that is not "type": "module" may
 * prefer .mts, .mjs or .json). */
const SCENARIO_EXTENSIONS = ['.ts', '.mts', '.mjs', '.js', '.json'];

export function listScenarios(): string[] {
  const names = scenarioDirs().flatMap((d) => {
    try {
      return readdirSync(d).filter((f) => SCENARIO_EXTENSIONS.includes(extname(f))).map((f) => f.slice(0, -extname(f).length));
    } catch {
      return [];
    }
  });
  return [...new Set(names)].sort();
}

/** How long a scenario module may take to load (evaluate) before natmatrix gives up on it. */
export const SCENARIO_LOAD_TIMEOUT_MS = 30_000;

export interface LoadOptions {
  /** give up on a module still loading after this long (default SCENARIO_LOAD_TIMEOUT_MS) */
  loadTimeoutMs?: number;
}

/** Find a scenario by name (scenarios/NAME.ts) or path (.ts, .js, .mjs, .json) and validate it. */
export async function loadScenario(nameOrPath: string, options: LoadOptions = {}): Promise<Scenario> {
  const looksLikePath = nameOrPath.includes('/') || ['.ts', '.js', '.mjs', '.json'].includes(extname(nameOrPath));
  const file = looksLikePath
    ? fromUser(nameOrPath)
    : (scenarioDirs().flatMap((d) => SCENARIO_EXTENSIONS.map((x) => resolve(d, `${nameOrPath}${x}`))).find((f) => existsSync(f)) ?? resolve(SCENARIO_DIR, `${nameOrPath}.ts`));
  if (!existsSync(file)) {
    const known = listScenarios();
    throw new UsageError(
      looksLikePath
        ? `scenario file not found: ${file}`
        : `unknown scenario "${nameOrPath}"${didYouMean(nameOrPath, known)} (known: ${known.join(', ')}; or give a path to a scenario file)`,
    );
  }
  let raw: unknown;
  try {
    const mod = await importSettled(file, options.loadTimeoutMs ?? SCENARIO_LOAD_TIMEOUT_MS);
    raw = mod.default;
  } catch (cause) {
    if (cause instanceof UsageError) throw cause;
    const syntax = await syntaxErrorOf(cause, file);
    if (syntax) throw new UsageError(`cannot load scenario ${file}: syntax error at ${syntax}`, { cause });
    // one line: the first, and the next too when the first only announces it ("… failed with 1 error:")
    const [first = '', next] = String((cause as Error)?.message ?? cause).split('\n');
    throw new UsageError(`cannot load scenario ${file}: ${first}${/:\s*$/.test(first) && next?.trim() ? ` ${next.trim()}` : ''}`, { cause });
  }
  if (raw === undefined) throw new UsageError(`scenario ${file} has no default export (use \`export default defineScenario({...})\`)`);
  return parseScenario(raw, file);
}

/** This module runs compiled (the installed package's dist/, or a checkout's cached build: see
 * harness/prebuilt.mjs), not as TypeScript under tsx. */
const COMPILED = !import.meta.url.endsWith('.ts');
/** Where the compiled shipped scenarios are (set by the natmatrix command; dist/scenarios otherwise). */
const compiledScenarios = () => ((globalThis as Record<symbol, unknown>)[Symbol.for('natmatrix.compiledScenarios')] as string | undefined) ?? resolve(ROOT, 'dist', 'scenarios');
const TS_EXTENSIONS = ['.ts', '.mts', '.cts'];

/**
 * Import a scenario file. Under tsx (a checkout, the npm scripts) any file imports as it is. The installed
 * package and the natmatrix command run compiled JavaScript with no TypeScript loader: a shipped scenario
 * is imported from its compiled copy (dist/scenarios/, or the cached build's), and a user's .ts scenario through tsx's isolated `tsImport`, which
 * loads it as ESM whatever the user's package.json says (a plain `import` of a .ts file in a project
 * without "type": "module" fails).
 */
async function importScenarioModule(file: string): Promise<{ default?: unknown }> {
  if (extname(file) === '.json') return (await import(pathToFileURL(file).href, { with: { type: 'json' } })) as { default?: unknown };
  if (COMPILED && TS_EXTENSIONS.includes(extname(file))) {
    const name = basename(file, extname(file));
    const compiled = [resolve(compiledScenarios(), `${name}.js`), resolve(compiledScenarios(), `${name}.mjs`)].find((f) => existsSync(f));
    if (dirname(file) === SCENARIO_DIR && compiled) return (await import(pathToFileURL(compiled).href)) as { default?: unknown };
    const { tsImport } = await import('tsx/esm/api');
    const mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: unknown };
    // in a CommonJS project tsx compiles it to CommonJS: its `export default` is then module.exports.default
    const inner = mod.default as Record<string, unknown> | undefined;
    return inner && typeof inner === 'object' && Object.keys(inner).length === 1 && 'default' in inner ? { default: inner.default } : mod;
  }
  return (await import(pathToFileURL(file).href)) as { default?: unknown };
}

/**
 * Import a scenario module, and fail with a UsageError if it never finishes: a top-level await that can
 * never settle leaves nothing to wait for, and Node would simply exit (code 0 on Node 20, 13 on 22+) as if
 * the run were done; one that waits on something alive would hang. So while it loads: the event loop
 * running empty ('beforeExit') and a timeout fail the load, and an exit of the process anyway (the module
 * calling process.exit, Node's exit 13) is turned into exit 2 with one line.
 */
async function importSettled(file: string, timeoutMs: number): Promise<{ default?: unknown }> {
  const never = (why: string) => new UsageError(`scenario ${file} never finished loading: ${why}`);
  let fail: (e: Error) => void = () => {};
  const stuck = new Promise<never>((_, reject) => (fail = reject));
  const onBeforeExit = () => fail(never('its top-level await never settles (nothing is left that could settle it)'));
  const onExit = (code: number) => {
    writeSync(2, `natmatrix: ${never(`the process was exiting (code ${code}) while it loaded`).message}\n`);
    process.exitCode = EXIT.usage;
  };
  const timer = setTimeout(() => fail(never(`still loading after ${timeoutMs} ms (a top-level await that never settles?)`)), timeoutMs);
  timer.unref(); // a timer of ours must not keep the process alive: the empty event loop is the other signal
  process.on('beforeExit', onBeforeExit);
  process.on('exit', onExit);
  try {
    const loading = importScenarioModule(file);
    return await Promise.race([loading, stuck]);
  } finally {
    clearTimeout(timer);
    process.off('beforeExit', onBeforeExit);
    process.off('exit', onExit);
  }
}

/**
 * Where a scenario file failed to parse, as "file:line:column: message", or null for any other failure.
 * tsx (esbuild) puts the place in its message; Node's own parser (.mjs, .js in an ESM package) does not,
 * so esbuild parses the file again to find it. Columns count from 0, as esbuild prints them.
 */
async function syntaxErrorOf(cause: unknown, file: string): Promise<string | null> {
  const message = cause instanceof Error ? cause.message : '';
  const tsx = /^Transform failed with (\d+) errors?:\n(.+?:\d+:\d+): ERROR: (.*)$/m.exec(message);
  if (tsx) return `${tsx[2]}: ${tsx[3]}${Number(tsx[1]) > 1 ? ` (and ${Number(tsx[1]) - 1} more)` : ''}`;
  if (!(cause instanceof SyntaxError)) return null;
  const loader = ({ '.json': 'json', '.ts': 'ts', '.mts': 'ts', '.cts': 'ts' } as const)[extname(file)] ?? 'js';
  try {
    const { transformSync } = await import('esbuild');
    transformSync(readFileSync(file, 'utf8'), { loader, sourcefile: file, format: 'esm', logLevel: 'silent' });
  } catch (e) {
    const first = (e as { errors?: { text: string; location: { file: string; line: number; column: number } | null }[] }).errors?.[0];
    if (first?.location) return `${first.location.file}:${first.location.line}:${first.location.column}: ${first.text}`;
  }
  // esbuild accepts the file (the error is in a module it imports, or a rule only Node enforces)
  return null;
}
