// Agents as the harness knows them. An agent is one or two executables (the peer, one for both roles or
// one per role, and optionally a rendezvous); a small manifest beside it (natmatrix-agent.json) declares
// what the harness needs to know about it: who decides a try's verdict, how long a try may take, which
// rendezvous scope and run services it needs, how many sockets it uses, what it costs to start, how to
// check and install it, and what it is expected to achieve (its expectation model).
//
// A scenario names its agent (or several), `--agent` replaces it with an executable or a manifest, and
// `--agent name=FILE` (repeated) runs several side by side. Everything is resolved here into AgentSpecs:
// plain data, paths absolute, defaults filled in, contradictions refused with one line naming the field.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { z } from 'zod';
import { userDir } from './args.ts';
import { issueLines, UsageError } from './errors.ts';
import { expectationModelSchema, type ExpectationModel } from './expect.ts';
import { RENDEZVOUS_SCOPES, VERDICT_RULES, type RendezvousScope, type Timing, type VerdictRule } from './types.ts';

export const MANIFEST_FILE = 'natmatrix-agent.json';

export { RENDEZVOUS_SCOPES, VERDICT_RULES };
export type { RendezvousScope, Timing, VerdictRule };

export const SERVICES = ['relay', 'stun', 'turn'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** What a default agent costs to start (plain node on a bundle, measured on the 2-core machine). */
export const DEFAULT_START_COST_MS = 70;

const timingSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('window') }).strict(),
  z.object({ mode: z.literal('budget'), budgetMs: z.number().int().min(100).max(600_000) }).strict(),
]);

const pathName = z.string().regex(/^[a-z][a-z0-9-]*$/, 'a path name: lower-case letters, digits and dashes');
const file = z.string().min(1);
const argv = z.array(z.string().min(1)).min(1);

/** The fields an agent declares: in a manifest file, inline in a scenario's `agents`, or as a
 * scenario's defaults for its agents. All optional but `peer` (in a manifest). */
export const agentFieldsSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'use lower-case letters, digits and dashes').optional(),
    description: z.string().min(1).optional(),
    /** one executable for both roles (NMX_ROLE tells which), or one per role */
    peer: z.union([file, z.object({ a: file, b: file }).strict()], { error: 'the peer executable: a path, or { "a": path, "b": path } for one per role' }),
    /** the rendezvous executable; null: none (peers get no NMX_RENDEZVOUS); absent: the scenario's */
    rendezvous: file.nullable().optional(),
    rendezvousScope: z.enum(RENDEZVOUS_SCOPES).optional(),
    verdict: z.enum(VERDICT_RULES).optional(),
    timing: timingSchema.optional(),
    /** many: the agent opens sockets on ports of its own choosing (a single-port DMZ forwards only
     * NMX_LOCAL_PORT; use dmz-host for such agents) */
    sockets: z.enum(['one', 'many']).optional(),
    /** CPU ms to start one peer process: feeds the default number of lanes */
    startCostMs: z.number().int().min(1).max(60_000).optional(),
    services: z.array(z.enum(SERVICES)).optional(),
    /** the agent's steps in order (the report counts each later step's rescues) */
    strategy: z.array(pathName).min(1).optional(),
    /** check each connected verdict's peer against the partner (default true; a stack that cannot say
     * whom it reached sets false, and the report says its peers are unchecked) */
    peerCheck: z.boolean().optional(),
    /** argv run in the manifest's folder: exit 0 means installed */
    check: argv.optional(),
    /** argv run in the manifest's folder when `check` fails, once, before anything is built */
    install: argv.optional(),
    expect: expectationModelSchema.optional(),
    /** run as root, unconfined, in the node (raw sockets, its own nft rules, …): the report says so.
     * Default false: an unprivileged user with no capabilities, in its own PID and mount namespaces */
    privileged: z.boolean().optional(),
    /** one process per host serves every try (stdin/stdout lines: the contract's SERVE); default
     * false: a process per try */
    serve: z.boolean().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.rendezvous === null && m.rendezvousScope !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['rendezvousScope'], message: 'the agent has no rendezvous (rendezvous: null), so it has no scope' });
    }
    if (m.install && !m.check) ctx.addIssue({ code: 'custom', path: ['install'], message: 'install needs a check command (how else to tell it is needed?)' });
    if (m.strategy?.includes('relayed') && m.services && !m.services.includes('relay') && !m.services.includes('turn')) {
      ctx.addIssue({ code: 'custom', path: ['strategy'], message: 'a "relayed" step needs a relay: add "relay" or "turn" to services' });
    }
    if (m.services && new Set(m.services).size !== m.services.length) ctx.addIssue({ code: 'custom', path: ['services'], message: 'a service is named twice' });
  });

export type AgentFields = z.output<typeof agentFieldsSchema>;

/** An agent, resolved: absolute paths, every default filled in. */
export interface AgentSpec {
  name: string;
  description: string | null;
  /** the manifest it came from, or its peer executable */
  source: string;
  /** where check and install run */
  dir: string;
  peer: { a: string; b: string };
  rendezvous: string | null;
  rendezvousScope: RendezvousScope;
  verdict: VerdictRule;
  timing: Timing;
  sockets: 'one' | 'many';
  startCostMs: number;
  services: ServiceName[];
  strategy: string[] | null;
  peerCheck: boolean;
  check: string[] | null;
  install: string[] | null;
  /** the agent's own expectation model, if it brings one */
  model: ExpectationModel | null;
  /** runs as root, unconfined (declared); false: confined (confine.ts) */
  privileged: boolean;
  /** one process per host serves every try (serve.ts); false: a process per try */
  serve: boolean;
}

/** What a scenario (or the command line) sets for all of its agents, below what an agent declares. */
export interface AgentDefaults {
  rendezvous: string;
  rendezvousScope?: RendezvousScope | undefined;
  services: ServiceName[];
  strategy?: string[] | undefined;
}


/** Parse agent fields (from a manifest file or a scenario entry); paths resolve against `dir`. */
export function parseAgentFields(raw: unknown, where: string): AgentFields {
  const r = agentFieldsSchema.safeParse(raw);
  if (!r.success) throw new UsageError(`malformed agent manifest ${where}: ${issueLines(r.error.issues).join('; ')}`);
  return r.data;
}

/** Read a manifest file. */
export function readManifest(path: string): AgentFields {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (cause as Error).message;
    throw new UsageError(`cannot read agent manifest ${path}: ${why}`, { cause });
  }
  return parseAgentFields(raw, path);
}

/** Is this path a manifest (rather than an executable)? */
export const isManifestPath = (p: string) => extname(p) === '.json';

/** A name for an agent without one: its folder's ("agents/udp-punch/peer.ts" → "udp-punch"). */
function nameFor(peerFile: string): string {
  const n = basename(dirname(peerFile)).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return n || 'agent';
}

/** Fill in an agent from its declared fields and the scenario's defaults. */
export function specOf(fields: AgentFields, dir: string, source: string, defaults: AgentDefaults, name?: string): AgentSpec {
  const at = (f: string) => resolve(dir, f);
  const peer = typeof fields.peer === 'string' ? { a: at(fields.peer), b: at(fields.peer) } : { a: at(fields.peer.a), b: at(fields.peer.b) };
  const rendezvous = fields.rendezvous === null ? null : fields.rendezvous !== undefined ? at(fields.rendezvous) : defaults.rendezvous;
  const services = [...new Set([...(fields.services ?? []), ...defaults.services])].sort() as ServiceName[];
  return {
    name: name ?? fields.name ?? nameFor(peer.a),
    description: fields.description ?? null,
    source,
    dir,
    peer,
    rendezvous,
    rendezvousScope: fields.rendezvousScope ?? defaults.rendezvousScope ?? 'run',
    verdict: fields.verdict ?? 'both',
    timing: fields.timing ?? { mode: 'window' },
    sockets: fields.sockets ?? 'one',
    startCostMs: fields.startCostMs ?? DEFAULT_START_COST_MS,
    services,
    strategy: fields.strategy ?? defaults.strategy ?? null,
    peerCheck: fields.peerCheck ?? true,
    check: fields.check ?? null,
    install: fields.install ?? null,
    model: fields.expect ?? null,
    privileged: fields.privileged ?? false,
    serve: fields.serve ?? false,
  };
}

/**
 * An agent named by a path: a manifest (.json), or a peer executable (then the rest comes from the
 * scenario). A directory holding a manifest stands for that manifest.
 */
export function agentFromPath(path: string, defaults: AgentDefaults, name?: string): AgentSpec {
  let file = path;
  if (existsSync(file) && statSync(file).isDirectory()) {
    const m = resolve(file, MANIFEST_FILE);
    if (!existsSync(m)) throw new UsageError(`agent ${file} is a folder without a ${MANIFEST_FILE}: give the peer executable or a manifest`);
    file = m;
  }
  if (isManifestPath(file)) return specOf(readManifest(file), dirname(file), file, defaults, name);
  if (!existsSync(file)) throw new UsageError(`agent not found: ${file} (a relative path is taken from the directory the command ran in, ${userDir()}; check the path, or run from your project's folder)`);
  return specOf({ peer: file }, dirname(file), file, defaults, name);
}

/** `--agent name=FILE` → [name, FILE]; a bare FILE → [undefined, FILE]. */
export function splitNamedAgent(arg: string): [string | undefined, string] {
  const m = /^([a-z0-9][a-z0-9-]*)=(.+)$/.exec(arg);
  return m ? [m[1], m[2]!] : [undefined, arg];
}

/** Agents of one run must have distinct names (the report and the run folder tell them apart by it). */
export function checkAgentNames(agents: AgentSpec[]): void {
  const seen = new Set<string>();
  for (const a of agents) {
    if (seen.has(a.name)) throw new UsageError(`two agents are named "${a.name}": name them (--agent NAME=FILE, or keys of the scenario's agents)`);
    seen.add(a.name);
  }
  if (agents.length > MAX_AGENTS) throw new UsageError(`${agents.length} agents in one run; at most ${MAX_AGENTS}`);
}

export const MAX_AGENTS = 8;

/**
 * Make sure an agent is installed: run its `check` in its folder, and when that fails its `install`,
 * once, then `check` again. Says what it does on `say`; a UsageError when it stays uninstalled.
 */
export function ensureInstalled(spec: AgentSpec, say: (line: string) => void): void {
  if (!spec.check) return;
  // an install's output goes to stderr: stdout may be carrying --json
  const run = (cmd: string[], inherit: boolean) =>
    spawnSync(cmd[0]!, cmd.slice(1), { cwd: spec.dir, stdio: inherit ? ['ignore', 2, 2] : 'pipe', encoding: 'utf8' });
  const checked = run(spec.check, false);
  if (checked.status === 0) return;
  const why = checked.error ? checked.error.message : (checked.stderr || checked.stdout || `exit code ${checked.status}`).trim().split('\n').at(-1);
  if (!spec.install) throw new UsageError(`agent ${spec.name} is not ready (${spec.check.join(' ')} in ${spec.dir}: ${why}) and its manifest has no install command`);
  say(`natmatrix: installing agent ${spec.name}: ${spec.install.join(' ')} (in ${spec.dir})`);
  const installed = run(spec.install, true);
  if (installed.status !== 0 || run(spec.check, false).status !== 0) {
    throw new UsageError(`agent ${spec.name} could not be installed: ${spec.install.join(' ')} in ${spec.dir} ${installed.error ? `failed: ${installed.error.message}` : `exited ${installed.status}`}; run it yourself and retry`);
  }
}
