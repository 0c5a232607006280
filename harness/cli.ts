// natmatrix scenario runner: `natmatrix scenario <name|file> [options]` (`npm run scenario -- …`).
// plan → build → run → judge → report → teardown, with one line and exit code 2 for anything the
// user can fix, and teardown on every way out.
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fromUser, parseCommandLine, refuseSwallowed, userDir, VERSION, wholeNumber } from './args.ts';
import { EnvironmentError, EXIT, RunError, UsageError, VerifyError } from './errors.ts';
import { hostFacts, preflight, REQUIRED_TOOLS } from './host.ts';
import { agentFromPath, checkAgentNames, ensureInstalled, RENDEZVOUS_SCOPES, splitNamedAgent, type AgentSpec, type RendezvousScope, type ServiceName } from './manifest.ts';
import { buildLab, type Lab } from './lab.ts';
import { classifyOnLab, misbehaving } from './classify.ts';
import { findNat, natInfo } from './nat.ts';
import { MAX_JOBS, plan, topologyJson } from './plan.ts';
import { compareAgents, progressLine, renderJson, renderMarkdown, renderTerminal, summarize, timeDistribution } from './report.ts';
import { runAttempts, runnableAgents } from './run.ts';
import { checkOutOption, checkRunFolder, handOverToInvokingUser, makeRunFolder } from './run-folder.ts';
import { ROOT, listScenarios, loadScenario, natTypesOf, type Scenario } from './scenario.ts';
import { reportLeftovers, Teardown, unwindOnSignals } from './teardown.ts';
import type { Cell, Report } from './types.ts';

export { EXIT };


/**
 * The agents of a run: the scenario's, or those named on the command line. One bare `--agent FILE`
 * replaces the scenario's agent (an executable takes the scenario's rendezvous, services and strategy;
 * a manifest brings its own); `--agent NAME=FILE` (repeated) runs several side by side. Paths are
 * relative to the user's directory (npm's INIT_CWD). `--rendezvous-agent` and `--rendezvous-scope` apply to all.
 */
function commandLineAgents(s: Scenario, args: string[], rendezvous: string | undefined, scope: RendezvousScope | undefined): AgentSpec[] {
  let agents = args.length
    ? args.map((arg) => {
        const [name, file] = splitNamedAgent(arg);
        return agentFromPath(fromUser(file), s.agentDefaults, name);
      })
    : s.agents;
  // the command line wins over a manifest's own rendezvous too
  if (rendezvous) agents = agents.map((x) => ({ ...x, rendezvous: fromUser(rendezvous) }));
  if (scope) agents = agents.map((x) => (x.rendezvous === null ? x : { ...x, rendezvousScope: scope }));
  checkAgentNames(agents);
  return agents;
}

/** Each agent as the report describes it, with the summary of its own cells. */
function agentReports(specs: AgentSpec[], cells: Cell[]): Report['agents'] {
  return specs.map((x) => {
    const own = cells.filter((c) => c.agent === x.name);
    return {
      name: x.name,
      description: x.description,
      source: relative(ROOT, x.source).startsWith('..') ? x.source : relative(ROOT, x.source),
      verdict: x.verdict,
      timing: x.timing,
      rendezvousScope: x.rendezvous === null ? null : x.rendezvousScope,
      services: x.services,
      sockets: x.sockets,
      peerCheck: x.peerCheck,
      privileged: x.privileged,
      strategy: x.strategy,
      summary: summarize(own, x.strategy),
      timeToDirect: timeDistribution(own),
    };
  });
}

const HELP = `usage: natmatrix scenario <name|file> [options]      (npm run scenario -- <name|file> [options])

Builds the scenario's NATs in network namespaces, runs the agents through every pairing and prints the
success matrix. Needs root (sudo).

options:
  --list             list the scenarios and exit (with --json: as JSON)
  --tries N          tries per pairing (default: the scenario's)
  --timeout MS       punch window per try in ms (default: the scenario's)
  --jobs N           pairings run at once, each on its own routers (default: tries expected to fail + 2 per core)
  --out DIR          run folder, new or empty: a folder holding anything (an old run) is refused
                     (default: runs/<UTC timestamp>-<name>-<run id>/); created mode 0700, and under
                     sudo handed to the invoking user when the run ends
  --json             print report.json on stdout (human output goes to stderr)
  --keep             leave the topology up for inspection; tear down later with npm run clean
  --verify           classify every router first (RFC 5780-style, as npm run classify) and refuse,
                     with exit 2, to report a matrix whose routers don't behave as declared
  --pcap             capture every try on both routers' WAN and LAN (tcpdump) into the run folder
  --agent FILE       run this agent instead of the scenario's: a peer executable obeying the agent
                     contract (.ts is bundled, .js/.mjs run with node), or an agent manifest (.json)
  --agent NAME=FILE  repeat to run several agents side by side on the same routers: one matrix each,
                     and the cells where they differ
  --rendezvous-agent FILE   the rendezvous executable for every agent
  --rendezvous-scope run|lane|try   one rendezvous per run, per lane or per try (default: the agent's
                     manifest, else the scenario's, else run)
  --observe          report without expectations: exit 0 unless a cell is an error
  --internet-hops N  routers the internet stands for: packets with a TTL of N or less die on the
                     internet bridge (default: the scenario's, else 8; 0 turns it off)
  --dry-run          print the plan (namespaces, addresses, attempts) and exit; needs no root
  --no-color         plain terminal output (also NO_COLOR=1)
  -h, --help         this text
  --version          print natmatrix's version

Under npm, options go after \`--\` (npm run scenario -- <name> --tries 1): before it, npm takes them
for itself, and natmatrix refuses to run without them. Relative paths (a scenario file, --agent,
--out) are relative to the directory you ran the command in; a scenario name is looked up in
./scenarios/ there first, then among natmatrix's own.

exit codes: 0 every pairing as expected · 1 some pairing differs from its expectation ·
            2 usage or environment error, or --verify found a router not as declared (no matrix) ·
            3 an agent or the harness failed (cell "error") ·
            4 the teardown could not remove everything (it says what, and how to clean up)`;

const positiveInt = (name: string, value: string | undefined, max = 999_999_999) => wholeNumber(name, value, 1, max);

function utcStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

async function verifyRouters(lab: Lab, scenario: Scenario, teardown: Teardown, outDir: string, say: (line: string) => void): Promise<void> {
  const types = natTypesOf(scenario);
  const results = await classifyOnLab(lab, types, teardown, outDir);
  writeFileSync(resolve(outDir, 'classify.json'), JSON.stringify(results, null, 2) + '\n');
  const bad = misbehaving(results);
  if (bad.length) throw new VerifyError(`--verify: ${bad.join('; ')}; refusing to report a matrix on routers that don't behave as declared (probe logs in ${outDir})`);
  say(`verified: ${results.map((r) => r.nat).join(', ')} behave as declared (classify.json)`);
}

/** The scenario command's options (--help and --version come with parseCommandLine). */
const OPTIONS = {
  list: { type: 'boolean' },
  tries: { type: 'string' },
  timeout: { type: 'string' },
  jobs: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  keep: { type: 'boolean' },
  pcap: { type: 'boolean' },
  verify: { type: 'boolean' },
  agent: { type: 'string', multiple: true },
  'rendezvous-agent': { type: 'string' },
  'rendezvous-scope': { type: 'string' },
  observe: { type: 'boolean' },
  'internet-hops': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'no-color': { type: 'boolean' },
} as const;

async function main(argv: string[]): Promise<number> {
  // what npm must not take for itself: every option, --version too
  refuseSwallowed('scenario', [...Object.keys(OPTIONS), 'version']);
  const args = parseCommandLine({ args: argv, allowPositionals: true, options: OPTIONS, help: HELP });
  if (!args) return EXIT.ok;
  const { values: o, positionals } = args;
  if (o.list) {
    const list: Array<[string, Scenario]> = [];
    for (const name of listScenarios()) list.push([name, await loadScenario(name)]);
    if (o.json) {
      const rows = list.map(([name, s]) => ({ name, description: s.description, file: s.file, a: s.a, b: s.b, tries: s.tries, agents: s.agents.map((x) => x.name) }));
      process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      return EXIT.ok;
    }
    for (const [name, s] of list) {
      const agents = s.agents.length > 1 ? `, agents ${s.agents.map((x) => x.name).join(' + ')}` : '';
      console.log(`${name.padEnd(22)} ${s.a.length}×${s.b.length}, ${s.tries} tries${agents}  ${s.description}`);
    }
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length ? `give one scenario, not ${positionals.length}: ${positionals.join(' ')}` : `which scenario? (known: ${listScenarios().join(', ')})`);
  }
  const loaded = await loadScenario(positionals[0]!);
  const scope = o['rendezvous-scope'];
  if (scope !== undefined && !(RENDEZVOUS_SCOPES as readonly string[]).includes(scope)) {
    throw new UsageError(`--rendezvous-scope must be one of ${RENDEZVOUS_SCOPES.join(', ')}, not "${scope}"`);
  }
  const scenario: Scenario = {
    ...loaded,
    agents: commandLineAgents(loaded, o.agent ?? [], o['rendezvous-agent'], scope as RendezvousScope | undefined),
  };
  const observe = o.observe === true || scenario.observe;
  const p = plan(scenario, {
    tries: positiveInt('tries', o.tries, 1000),
    timeoutMs: wholeNumber('timeout', o.timeout, 50, 600_000),
    jobs: positiveInt('jobs', o.jobs, MAX_JOBS),
    observe,
    internetHops: wholeNumber('internet-hops', o['internet-hops'], 0, 64),
  });
  checkOutOption(o.out);
  if (o['dry-run']) {
    console.log(JSON.stringify({ topology: topologyJson(p), attempts: p.attempts.map(({ natA, natB, ...a }) => a) }, null, 2));
    return EXIT.ok;
  }

  // an old run's folder is refused before anything is built (and without root)
  if (o.out !== undefined) checkRunFolder(fromUser(o.out));

  // captures need tcpdump, the relay's per-run certificate openssl, STUN and TURN coturn
  const uses = (svc: ServiceName) => scenario.agents.some((x) => x.services.includes(svc));
  preflight({
    ...REQUIRED_TOOLS,
    ...(o.pcap ? { tcpdump: 'tcpdump' } : {}),
    ...(uses('relay') ? { openssl: 'openssl' } : {}),
    ...(uses('stun') || uses('turn') ? { turnserver: 'coturn', ss: 'iproute2' } : {}),
  });
  for (const x of scenario.agents) ensureInstalled(x, (line) => process.stderr.write(line + '\n'));
  const agents = await runnableAgents(scenario.agents);
  const startedAt = new Date();
  const outDir = o.out !== undefined ? fromUser(o.out) : resolve(userDir(), 'runs', `${utcStamp(startedAt)}-${scenario.name}-${p.runId}`);
  let created: boolean;
  try {
    ({ created } = makeRunFolder(outDir));
    writeFileSync(resolve(outDir, 'topology.json'), JSON.stringify(topologyJson(p), null, 2) + '\n');
  } catch (cause) {
    if (cause instanceof UsageError) throw cause;
    throw new UsageError(`cannot write the run folder ${outDir}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message} (choose another with --out)`, { cause });
  }

  const human = o.json ? process.stderr : process.stdout;
  const color = !o['no-color'] && !process.env.NO_COLOR && human.isTTY === true;
  const say = (line: string) => human.write(line + '\n');
  const progress = process.stderr.isTTY && !process.env.CI;

  const teardown = new Teardown();
  // the first undo, so the last to run (after every process that writes into the run folder has ended):
  // under sudo, the run folder goes to the user who ran sudo
  teardown.push('hand the run folder over', () => {
    const problem = handOverToInvokingUser(outDir, created);
    if (problem) process.stderr.write(`natmatrix: ${problem}\n`);
  });
  const removeSignals = unwindOnSignals(teardown, (sig) => process.stderr.write(`\nnatmatrix: ${sig}: tearing down run ${p.runId}…\n`), p.runId);
  try {
    const t0 = performance.now();
    const [host, lab] = await Promise.all([hostFacts(), buildLab(p, teardown)]);
    if (o.verify) await verifyRouters(lab, scenario, teardown, outDir, say);
    const { attempts, cells, isolation } = await runAttempts(lab, scenario, agents, teardown, {
      outDir,
      pcap: o.pcap ?? false,
      onAttempt: progress
        ? (done, total) => process.stderr.write(`\r\x1b[K${progressLine(done, total, performance.now() - t0)}`)
        : undefined,
    });
    if (progress) process.stderr.write('\r\x1b[K');
    writeFileSync(resolve(outDir, 'attempts.json'), JSON.stringify(attempts, null, 2) + '\n');
    const report: Report = {
      tool: 'natmatrix',
      version: VERSION,
      scenario: scenario.name,
      description: scenario.description,
      runId: p.runId,
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      host,
      options: { tries: p.tries, timeoutMs: p.timeoutMs, jobs: p.jobs, observe },
      strategy: scenario.agents[0]!.strategy,
      agents: agentReports(scenario.agents, cells),
      natTypes: natTypesOf(scenario).map(natInfo),
      rows: scenario.a,
      cols: scenario.b,
      cells,
      isolation,
      summary: summarize(cells, scenario.agents.length === 1 ? scenario.agents[0]!.strategy : null),
      comparison: compareAgents(cells),
      outDir,
    };
    writeFileSync(resolve(outDir, 'report.json'), renderJson(report));
    writeFileSync(resolve(outDir, 'report.md'), renderMarkdown(report));
    say(renderTerminal(report, { color }));
    if (o.json) process.stdout.write(renderJson(report));
    if (o.keep) {
      lab.keep();
      say(`topology kept: ${resolve(outDir, 'topology.json')}`);
      say(`  enter a node:  sudo npm run shell -- ${p.runId} 0ha    (nodes: inet, rdv, <lane>r{a,b}, <lane>h{a,b})`);
      say(`  tear it down:  sudo npm run clean -- ${p.runId}`);
    }
    if (report.summary.errored > 0) return EXIT.error;
    return report.summary.mismatched > 0 ? EXIT.mismatch : EXIT.ok;
  } finally {
    const errors = await teardown.unwind();
    removeSignals();
    if (errors.length) teardownFailed = reportLeftovers(errors, p.runId);
  }
}

/** set when the run's teardown could not remove everything: that exit code wins over the run's own */
let teardownFailed: number | undefined;

// `npm run scenario … | head` closes our stdout early: keep running (and tearing down) regardless
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

main(process.argv.slice(2)).then(
  (code) => process.exit(teardownFailed ?? code),
  (e: unknown) => {
    const err = e as Error;
    if (err instanceof UsageError || err instanceof EnvironmentError || err instanceof VerifyError) {
      process.stderr.write(`natmatrix: ${err.message}\n`);
      process.exit(teardownFailed ?? EXIT.usage);
    }
    const detail = err instanceof RunError ? err.message : (err?.stack ?? String(err));
    process.stderr.write(`natmatrix: run failed: ${detail}\n`);
    process.exit(teardownFailed ?? EXIT.error);
  },
);
