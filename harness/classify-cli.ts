// npm run classify [-- NAT…] [--json]: measure what every router really does (RFC 5780-style) and
// compare it with the registry. Exit 0 when every router behaves as declared, 1 when one does not,
// 2 on usage or environment errors.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWhenFlushed, fromUser, parseCommandLine, refuseSwallowed } from './args.ts';
import { classifyOnLab, renderClassification } from './classify.ts';
import { exitCodeOf } from './errors.ts';
import { preflight } from './host.ts';
import { buildTopology } from './lab.ts';
import { findNat, NAT_TYPES, type NatType } from './nat.ts';
import { topologyPlan } from './plan.ts';
import { unknownNatMessage, UsageError } from './scenario.ts';
import { reportLeftovers, Teardown, unwindOnSignals } from './teardown.ts';

const HELP = `usage: natmatrix classify [NAT…] [--json] [--out DIR]      (npm run classify -- [NAT…] [options])

Builds one router per NAT type (all of them without arguments) and measures what it really does,
RFC 5780-style: mapping and filtering behaviour, hairpinning and port preservation where a type asks
for them; compares that with the registry. Needs root (sudo).

options:
  --json       print the results as JSON on stdout (the table goes to stderr)
  --out DIR    where the probe logs go (default: a new temporary folder)
  -h, --help   this text
  --version    print natmatrix's version

exit codes: 0 every router behaves as declared · 1 one does not · 2 usage or environment error ·
            3 the harness failed · 4 the teardown could not remove everything`;

async function main(): Promise<number> {
  refuseSwallowed('classify', ['json', 'out']);
  const parsed = parseCommandLine({ allowPositionals: true, options: { json: { type: 'boolean' }, out: { type: 'string' } }, help: HELP });
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const types: NatType[] = positionals.length
    ? positionals.map((n) => findNat(n) ?? (() => { throw new UsageError(unknownNatMessage(n)); })())
    : [...NAT_TYPES];
  preflight();
  const outDir = values.out !== undefined ? fromUser(values.out) : mkdtempSync(join(tmpdir(), 'natmatrix-classify-'));
  const teardown = new Teardown();
  let runId: string | undefined;
  const removeSignals = unwindOnSignals(teardown, undefined, undefined, 'natmatrix classify');
  try {
    const p = topologyPlan('classify', types.length, undefined, { a: types.some((t) => t.layers) ? 2 : 1, b: 1 });
    runId = p.runId;
    const lab = await buildTopology(p, teardown);
    const results = await classifyOnLab(lab, types, teardown, outDir);
    if (values.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    (values.json ? process.stderr : process.stdout).write(renderClassification(results) + `probe logs: ${outDir}\n`);
    return results.every((r) => r.matches) ? 0 : 1;
  } finally {
    const errors = await teardown.unwind();
    await removeSignals();
    if (errors.length) leftover = reportLeftovers(errors, runId, 'natmatrix classify');
  }
}

/** the teardown could not remove everything: that exit code wins */
let leftover: number | undefined;

main().then(
  (code) => exitWhenFlushed(leftover ?? code),
  (e: unknown) => {
    const err = e as Error;
    process.stderr.write(`natmatrix classify: ${err.message}\n`);
    exitWhenFlushed(exitCodeOf(err));
  },
);
