// natmatrix scenario runner: `natmatrix scenario <name|file> [options]` (`npm run scenario -- …`).
// plan → build → run → judge → report → teardown, with one line and exit code 2 for anything the
// user can fix, and teardown on every way out.
//
// Only what --help needs is imported up front: the rest (scenarios, zod, the whole run) once the
// command line is read, so that `--help` costs Node's start and little more.
import { resolve } from 'node:path';
import { appendSummary, exitWhenFlushed, fromUser, parseCommandLine, refuseSwallowed, wholeNumber } from './args.ts';
import { EXIT, exitCodeOf, LeftoverError, RunError, UsageError } from './errors.ts';
import type { Scenario } from './scenario.ts';
import type { RUN_LIMITS as RunLimits, RunScenarioOptions } from './session.ts';
import type { RendezvousScope } from './types.ts';

export { EXIT };

const HELP = `usage: natmatrix scenario <name|file> [options]      (npm run scenario -- <name|file> [options])

Builds the scenario's NATs in network namespaces, runs the agents through every pairing and prints the
success matrix. Needs root (sudo).

options:
  --list             list the scenarios and exit (with --json: as JSON)
  --tries N          tries per pairing (default: the scenario's)
  --ci-width W       adaptive tries: after the first round (--tries), every cell whose 95 % interval
                     is wider than W (e.g. 0.2) gets as many tries again, round after round, until
                     it is that narrow, its expectation is settled, or --max-tries; the report says
                     how many tries each cell took
  --max-tries N      most tries of one cell with --ci-width (default 100)
  --timeout MS       punch window per try in ms (default: the scenario's)
  --jobs N           pairings run at once, each on its own routers (default: from the cores, the
                     agents and how long the tries are expected to take, within half the free
                     memory; --verbose says how)
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
  --shard I/N        run only the I-th of N shares of the tries (a cell's tries spread over the
                     shards); each shard writes a normal run folder, and natmatrix merge pools them
                     into the report of the whole run
  --baseline FILE    compare the run with a baseline run (its run folder or report.json, e.g. one
                     checked into your repository), cell by cell as natmatrix compare does; exit 5
                     when a cell regressed significantly (Fisher's exact test); compare.json
  --alpha P          the significance level for --baseline (default 0.05)
  --summary FILE     also append a narrow markdown summary (verdict, matrices, the cells to look at
                     and where their evidence is) to FILE, e.g. "$GITHUB_STEP_SUMMARY"
  --summary-artifact NAME   the name the run folder is uploaded under, for the summary's pointers
  --dry-run          print the plan (namespaces, addresses, attempts) and exit; needs no root
  --no-color         plain terminal output (also NO_COLOR=1)
  -v, --verbose      say how the run was planned (the number of lanes and why) on stderr
  -h, --help         this text
  --version          print natmatrix's version

Under npm, options go after \`--\` (npm run scenario -- <name> --tries 1): before it, npm takes them
for itself, and natmatrix refuses to run without them. Relative paths (a scenario file, --agent,
--out) are relative to the directory you ran the command in; a scenario name is looked up in
./scenarios/ there first, then among natmatrix's own.

exit codes: 0 every pairing as expected · 1 some pairing differs from its expectation ·
            2 usage or environment error, or --verify found a router not as declared (no matrix) ·
            3 an agent or the harness failed (cell "error") ·
            4 the teardown could not remove everything (it says what, and how to clean up) ·
            5 --baseline: a cell regressed significantly (4 and 3 win over it; it wins over 1)`;

/** A whole-number option of the run, parsed within the bounds the library checks too. */
const runNumber = (limits: typeof RunLimits, key: keyof typeof RunLimits, value: string | undefined) => wholeNumber(limits[key].option, value, limits[key].min, limits[key].max);

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
  shard: { type: 'string' },
  baseline: { type: 'string' },
  alpha: { type: 'string' },
  'ci-width': { type: 'string' },
  'max-tries': { type: 'string' },
  summary: { type: 'string' },
  'summary-artifact': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'no-color': { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

async function main(argv: string[]): Promise<number> {
  // what npm must not take for itself: every option, --version too
  refuseSwallowed('scenario', [...Object.keys(OPTIONS), 'version']);
  const args = parseCommandLine({ args: argv, allowPositionals: true, options: OPTIONS, help: HELP });
  if (!args) return EXIT.ok;
  const { values: o, positionals } = args;
  const { listScenarios, loadScenario } = await import('./scenario.ts');
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
    throw new UsageError(positionals.length ? `give one scenario, not ${positionals.length}: ${positionals.join(' ')}` : `which scenario? give a name or a scenario file (your own go in ./scenarios/; known: ${listScenarios().join(', ')})`);
  }
  const [{ executeRun, prepareRun, RUN_LIMITS }, { parseShard, topologyJson }, { progressLine, renderJson, renderSummary, renderTerminal, summaryLinks }] = await Promise.all([import('./session.ts'), import('./plan.ts'), import('./report.ts')]);
  const shard = o.shard === undefined ? undefined : parseShard(o.shard);
  if (typeof shard === 'string') throw new UsageError(shard);
  const ciWidth = o['ci-width'] === undefined ? undefined : /^(0?\.\d+|0|1)$/.test(o['ci-width']) ? Number(o['ci-width']) : NaN;
  if (ciWidth !== undefined && !(ciWidth > 0 && ciWidth < 1)) throw new UsageError(`--ci-width is the widest 95 % interval a cell may stop at, a number between 0 and 1 (e.g. 0.2), not "${o['ci-width']}"`);
  if (o.alpha !== undefined && o.baseline === undefined) throw new UsageError('--alpha is the significance level of --baseline: give --baseline FILE too');
  const compare = o.baseline === undefined ? null : await import('./compare.ts');
  const baseline = compare && o.baseline !== undefined ? compare.loadReport(fromUser(o.baseline)) : undefined;
  const baselineAlpha = compare ? compare.parseAlpha(o.alpha) : undefined;
  const options: RunScenarioOptions = {
    tries: runNumber(RUN_LIMITS, 'tries', o.tries),
    timeoutMs: runNumber(RUN_LIMITS, 'timeoutMs', o.timeout),
    jobs: runNumber(RUN_LIMITS, 'jobs', o.jobs),
    internetHops: runNumber(RUN_LIMITS, 'internetHops', o['internet-hops']),
    observe: o.observe === true,
    out: o.out,
    pcap: o.pcap ?? false,
    verify: o.verify ?? false,
    keep: o.keep ?? false,
    agents: o.agent ?? [],
    rendezvousAgent: o['rendezvous-agent'],
    rendezvousScope: o['rendezvous-scope'] as RendezvousScope | undefined,
    shard,
    baseline,
    baselineAlpha,
    ciWidth,
    maxTries: wholeNumber('max-tries', o['max-tries'], RUN_LIMITS.tries.min, RUN_LIMITS.tries.max),
  };
  const prepared = await prepareRun(positionals[0]!, options);
  const p = prepared.plan;
  if (o.verbose) process.stderr.write(`natmatrix: run ${p.runId}: ${p.attempts.length} tries${p.shard ? ` (shard ${p.shard.index}/${p.shard.count} of ${p.shard.planned})` : ''} on ${p.jobs} lanes (${p.jobsWhy})\n`);
  if (o['dry-run']) {
    console.log(JSON.stringify({ topology: topologyJson(p), planId: p.planId, ...(p.shard ? { shard: p.shard } : {}), attempts: p.attempts.map(({ natA, natB, ...a }) => a) }, null, 2));
    return EXIT.ok;
  }

  const human = o.json ? process.stderr : process.stdout;
  const color = !o['no-color'] && !process.env.NO_COLOR && human.isTTY === true;
  const say = (line: string) => human.write(line + '\n');
  const progress = process.stderr.isTTY && !process.env.CI;
  const t0 = performance.now();
  const report = await executeRun(prepared, {
    ...options,
    log: say,
    onSignal: (sig, runId) => process.stderr.write(`\nnatmatrix: ${sig}: tearing down run ${runId}…\n`),
    onAttempt: progress ? (done, total) => process.stderr.write(`\r\x1b[K${progressLine(done, total, performance.now() - t0)}`) : undefined,
  });
  if (progress) process.stderr.write('\r\x1b[K');
  say(renderTerminal(report, { color }));
  if (report.baseline && compare) say(compare.renderComparison(report.baseline, { color }));
  if (o.summary) appendSummary(o.summary, renderSummary(report, summaryLinks(o['summary-artifact'])) + (report.baseline && compare ? '\n' + compare.renderComparisonMarkdown(report.baseline) : ''));
  if (o.json) process.stdout.write(renderJson(report));
  if (o.keep) {
    say(`topology kept: ${resolve(report.outDir, 'topology.json')}`);
    say(`  enter a node:  sudo npm run shell -- ${p.runId} 0ha    (nodes: inet, rdv, <lane>r{a,b}, <lane>h{a,b})`);
    say(`  tear it down:  sudo npm run clean -- ${p.runId}`);
  }
  if (report.summary.errored > 0) return EXIT.error;
  if (report.baseline && report.baseline.summary.regressed > 0) return EXIT.regression;
  return report.summary.mismatched > 0 ? EXIT.mismatch : EXIT.ok;
}

// `npm run scenario … | head` closes our stdout early: keep running (and tearing down) regardless
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  async (e: unknown) => {
    const code = exitCodeOf(e);
    if (e instanceof LeftoverError) {
      // what could not be removed, one line each, and how to remove it; then the run's own failure
      const { reportLeftovers } = await import('./teardown.ts');
      reportLeftovers(e.errors, e.runId);
      if (e.cause) process.stderr.write(`natmatrix: the run had failed: ${(e.cause as Error).message}\n`);
    } else if (code === EXIT.usage) {
      process.stderr.write(`natmatrix: ${(e as Error).message}\n`);
    } else {
      const err = e as Error;
      process.stderr.write(`natmatrix: run failed: ${err instanceof RunError ? err.message : (err?.stack ?? String(err))}\n`);
    }
    exitWhenFlushed(code);
  },
);
