// natmatrix compare BASE NEW: two runs of one scenario compared cell by cell (compare.ts). Exit 0
// when no cell regressed significantly, 5 when one did, 2 for anything the user can fix (arguments,
// a report that cannot be read, runs of different scenarios). Needs no root.
import { writeFileSync } from 'node:fs';
import { fromUser, parseCommandLine, refuseSwallowed, runCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';

const HELP = `usage: natmatrix compare BASE NEW [options]      (npm run compare -- BASE NEW [options])

Compares two runs of one scenario cell by cell (a cell: an agent's pairing). BASE and NEW are run
folders or their report.json. Each cell of both runs is tested on two measures over its tries that did
not error: tries that connected (any path) and tries that connected directly (any path but the relay),
with Fisher's exact test. A cell is regressed when a measure dropped with p < alpha, improved when one
rose so and none dropped, unchanged otherwise; one in a single run, with no tries, or whose tries all
errored is not comparable. Needs no root.

options:
  --alpha P    significance level, 0 < P < 1 (default: 0.05)
  --json       print the comparison as JSON on stdout (the text goes to stderr)
  --markdown   print markdown for a GitHub job summary instead of the text
  --html FILE  also write NEW's report.html with the diff view (each cell unchanged, improved,
               regressed with its p-value, or not comparable) to FILE
  --no-color   plain terminal output (also NO_COLOR=1)
  -h, --help   this text
  --version    print natmatrix's version

exit codes: 0 no cell regressed · 5 a cell regressed significantly ·
            2 usage error (arguments, a missing or corrupt report, runs of different scenarios)`;

const OPTIONS = {
  alpha: { type: 'string' },
  json: { type: 'boolean' },
  markdown: { type: 'boolean' },
  html: { type: 'string' },
  'no-color': { type: 'boolean' },
} as const;


async function main(argv: string[]): Promise<number> {
  refuseSwallowed('compare', [...Object.keys(OPTIONS), 'version']);
  const args = parseCommandLine({ args: argv, allowPositionals: true, options: OPTIONS, help: HELP });
  if (!args) return EXIT.ok;
  const { values: o, positionals } = args;
  if (positionals.length !== 2) {
    throw new UsageError(
      positionals.length === 0
        ? 'which runs? give the base run and the new one: natmatrix compare BASE NEW (run folders or report.json files)'
        : positionals.length === 1
          ? `give the new run too: natmatrix compare ${positionals[0]} NEW`
          : `give two runs (BASE NEW), not ${positionals.length}: ${positionals.join(' ')}`,
    );
  }
  if (o.json && o.markdown) throw new UsageError('--json or --markdown, not both');
  const { compareReports, loadReport, parseAlpha, renderComparison, renderComparisonMarkdown } = await import('./compare.ts');
  const alpha = parseAlpha(o.alpha);
  const base = loadReport(fromUser(positionals[0]!));
  const next = loadReport(fromUser(positionals[1]!));
  const comparison = compareReports(base, next, alpha === undefined ? {} : { alpha });
  const human = o.json ? process.stderr : process.stdout;
  if (o.markdown) {
    process.stdout.write(renderComparisonMarkdown(comparison));
  } else {
    const color = !o['no-color'] && !process.env.NO_COLOR && human.isTTY === true;
    human.write(renderComparison(comparison, { color }));
  }
  if (o.html !== undefined) {
    // the new run's page with the diff view; its evidence links are relative to the new run's folder
    const { renderHtml } = await import('./html.ts');
    const file = fromUser(o.html);
    try {
      writeFileSync(file, renderHtml(next, { comparison }));
    } catch (e) {
      throw new UsageError(`cannot write --html ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
  }
  if (o.json) process.stdout.write(JSON.stringify(comparison, null, 2) + '\n');
  return comparison.summary.regressed > 0 ? EXIT.regression : EXIT.ok;
}

runCommand('compare', main);
