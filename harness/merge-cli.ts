// natmatrix merge DIR... --out DIR: the run folders of every shard of one run (--shard i/n) pooled
// into one run folder and report, as if one machine had run it all (merge.ts). Its exit code is a
// run's: 0 every pairing as expected, 1 a mismatch, 3 an error cell; 2 for shards that do not make
// one run, or anything else the user can fix. Needs no root.
import { appendSummary, fromUser, parseCommandLine, refuseSwallowed, runCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';

const HELP = `usage: natmatrix merge DIR... --out DIR [options]      (npm run merge -- DIR... --out DIR)

Pools the run folders of every shard of one run (natmatrix scenario … --shard i/n) into one run
folder: each cell's tries from all shards, judged again as one run would (successes and tries add up,
the Wilson interval, time-to-direct, paths and flakiness come from the pooled tries), the tries'
evidence copied in, each shard's own files under shards/<i>/, and every report format written.
Refused, with nothing written: shards of different plans (scenario, options, natmatrix version), a
missing or repeated shard, a report or attempts.json that is missing or corrupt. Needs no root.

options:
  --out DIR    the merged run folder, new or empty
  --summary FILE            also append a narrow markdown summary to FILE ("$GITHUB_STEP_SUMMARY")
  --summary-artifact NAME   the name the merged run folder is uploaded under, for the summary
  --json       print the merged report.json on stdout (the table goes to stderr)
  --no-color   plain terminal output (also NO_COLOR=1)
  -h, --help   this text
  --version    print natmatrix's version

exit codes: 0 every pairing as expected · 1 some pairing differs from its expectation ·
            2 usage error (shards that are not one run, a missing or corrupt report, --out) ·
            3 some cell is an error`;

const OPTIONS = {
  out: { type: 'string' },
  summary: { type: 'string' },
  'summary-artifact': { type: 'string' },
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
} as const;

async function main(argv: string[]): Promise<number> {
  refuseSwallowed('merge', [...Object.keys(OPTIONS), 'version']);
  const args = parseCommandLine({ args: argv, allowPositionals: true, options: OPTIONS, help: HELP });
  if (!args) return EXIT.ok;
  const { values: o, positionals } = args;
  if (positionals.length === 0) throw new UsageError('which shards? give the run folder of every shard: natmatrix merge runs/shard-1 runs/shard-2 … --out runs/merged');
  if (o.out === undefined || o.out.trim() === '') throw new UsageError('where to? give the merged run folder with --out DIR (new or empty)');
  const [{ mergeRuns }, { renderJson, renderSummary, renderTerminal, summaryLinks }] = await Promise.all([import('./merge.ts'), import('./report.ts')]);
  const t0 = performance.now();
  const report = mergeRuns(positionals.map((d) => fromUser(d)), { out: fromUser(o.out) });
  const human = o.json ? process.stderr : process.stdout;
  const color = !o['no-color'] && !process.env.NO_COLOR && human.isTTY === true;
  human.write(renderTerminal(report, { color }) + '\n');
  human.write(`merged ${report.merged!.shards.length} shards (${report.merged!.shards.reduce((n, s) => n + s.tries, 0)} tries) in ${Math.round(performance.now() - t0)} ms into ${report.outDir}\n`);
  if (o.summary) appendSummary(o.summary, renderSummary(report, summaryLinks(o['summary-artifact'])));
  if (o.json) process.stdout.write(renderJson(report));
  if (report.summary.errored > 0) return EXIT.error;
  return report.summary.mismatched > 0 ? EXIT.mismatch : EXIT.ok;
}

runCommand('merge', main);
