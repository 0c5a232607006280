// report.html as markup: self-contained (nothing to load from a network), every report string escaped,
// every cell present with its data attributes, mismatches and errors marked, the diff view. Read back with
// python3's html.parser (a real parser, not ours). What a person sees in a browser:
// test/integration/html.test.ts.
import { createHash } from 'node:crypto';
import test from 'ava';
import { execa } from 'execa';
import { compareReports } from '../../harness/compare.ts';
import { MAX_TRIES_LISTED, escapeHtml, evidenceHref, rateColour, renderHtml } from '../../harness/html.ts';
import type { Report } from '../../harness/types.ts';
import { HOSTILE, fullMatrix, symmetricVsCone, troubled } from '../fixtures/reports/fixtures.ts';

interface Tag {
  tag: string;
  attrs: Record<string, string | null>;
}
interface Parsed {
  tags: Tag[];
  text: string;
  scripts: string[];
}

const PARSE = `
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.scripts, self.in_script = [], [], [], False
    def handle_starttag(self, tag, attrs):
        self.tags.append({'tag': tag, 'attrs': dict(attrs)})
        if tag == 'script':
            self.in_script = True
            self.scripts.append('')
    def handle_startendtag(self, tag, attrs):
        self.tags.append({'tag': tag, 'attrs': dict(attrs)})
    def handle_endtag(self, tag):
        if tag == 'script':
            self.in_script = False
    def handle_data(self, data):
        if self.in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)
p = P()
p.feed(sys.stdin.read())
p.close()
print(json.dumps({'tags': p.tags, 'text': ''.join(p.text), 'scripts': p.scripts}))
`;

async function parse(page: string): Promise<Parsed> {
  const r = await execa('python3', ['-c', PARSE], { input: page, reject: false });
  if (r.exitCode !== 0) throw new Error(`python3 could not parse the page: ${r.stderr}`);
  return JSON.parse(r.stdout) as Parsed;
}

const heatCells = (p: Parsed): Tag[] => p.tags.filter((x) => x.tag === 'button' && (x.attrs.class ?? '').split(' ').includes('cell'));
const heatCell = (p: Parsed, agent: string, a: string, b: string): Tag => {
  const c = heatCells(p).find((x) => x.attrs['data-agent'] === agent && x.attrs['data-a'] === a && x.attrs['data-b'] === b);
  if (!c) throw new Error(`no heat cell ${agent} ${a} × ${b}`);
  return c;
};

/** Every attribute that makes a browser fetch or navigate, with where it points. */
const URL_ATTRS = ['src', 'href', 'action', 'formaction', 'poster', 'data', 'srcset', 'xlink:href', 'background', 'manifest', 'ping'];

test('the page loads nothing: no URL of any scheme in a fetching attribute, no http(s) anywhere, no @import or url()', async (t) => {
  const { report, attempts, comparison } = troubled();
  const page = renderHtml(report, { attempts, comparison });
  t.false(/https?:\/\//i.test(page), 'no http:// or https:// anywhere in the page');
  t.false(/@import|url\(/i.test(page), 'no CSS that fetches');
  const p = await parse(page);
  for (const { tag, attrs } of p.tags) {
    for (const name of URL_ATTRS) {
      const v = attrs[name];
      if (v === undefined || v === null) continue;
      t.false(/^\s*([a-z][a-z0-9+.-]*:|\/\/|\/)/i.test(v), `<${tag} ${name}="${v}"> is relative to the run folder or a #fragment`);
    }
  }
  t.false(p.tags.some((x) => ['link', 'img', 'iframe', 'object', 'embed', 'audio', 'video', 'source', 'base', 'form'].includes(x.tag)), 'no element that loads something');
  t.is(p.tags.filter((x) => x.tag === 'script').length, 1, 'one inline script');
  t.is(p.tags.find((x) => x.tag === 'script')!.attrs.src, undefined);
  const csp = p.tags.find((x) => x.tag === 'meta' && x.attrs['http-equiv'] === 'Content-Security-Policy')?.attrs.content ?? '';
  t.regex(csp, /default-src 'none'/);
  // the policy's script hash is the script's own: it runs, and nothing else could
  const hash = createHash('sha256').update(p.scripts[0]!).digest('base64');
  t.true(csp.includes(`'sha256-${hash}'`), csp);
});

test('hostile strings from the report are shown as text, never as markup', async (t) => {
  const { report, attempts, comparison } = troubled();
  const evil = `"><script>alert(3)</script><a href="https://evil.example/">x</a>'`;
  report.description = evil;
  report.scenario = `sc${evil}`;
  report.host.kernel = evil;
  report.agents[0]!.description = evil;
  report.agents[0]!.source = evil;
  report.natTypes[0]!.title = evil;
  report.cells[0]!.evidence = `javascript:alert(4)//${evil}`;
  report.cells[1]!.evidence = '//evil.example/share';
  comparison.cells[0]!.reason = evil;
  attempts[0]!.agents.a.stderrTail = HOSTILE;
  attempts[0]!.outcome = 'failed';
  attempts[0]!.reason = HOSTILE;
  const page = renderHtml(report, { attempts, comparison });
  t.false(page.includes('<script>alert'), 'no injected script element');
  t.false(page.includes('<img'), 'no injected image');
  t.false(page.includes('evil.example/"'), 'no injected link');
  const p = await parse(page);
  t.is(p.tags.filter((x) => x.tag === 'script').length, 1);
  t.false(p.tags.some((x) => x.tag === 'img'));
  for (const { tag, attrs } of p.tags) {
    for (const name of Object.keys(attrs)) t.false(/^on/i.test(name), `<${tag}> has no event handler attribute (${name})`);
    if (attrs.href) t.false(/^\s*(javascript|https?|data):|^\s*\/\//i.test(attrs.href), `<${tag} href="${attrs.href}">`);
  }
  // … and the text is there for a person to read, as it was (control characters dropped)
  t.true(p.text.includes(evil), 'the description reads as it was');
  t.true(p.text.includes(HOSTILE.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')), 'agent output reads as it was');
  t.false(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(page), 'no control characters in the page');
});

test('escapeHtml and evidenceHref', (t) => {
  t.is(escapeHtml(`<a href="x" title='y'>&</a>\u0000\u001b`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  t.is(evidenceHref('cells/udp/a-vs-b', true), 'cells/udp/a-vs-b/');
  t.is(evidenceHref('cells/a b/#x?.stdout', false), 'cells/a%20b/%23x%3F.stdout');
  t.is(evidenceHref('javascript:alert(1)', false), null);
  t.is(evidenceHref('/etc/passwd', false), null);
  t.is(evidenceHref('//host/share', false), null);
  t.is(evidenceHref('https://x.example/', false), null);
});

test('every cell of every agent is a button with its data attributes, matching the report', async (t) => {
  const { report, attempts } = fullMatrix();
  const p = await parse(renderHtml(report, { attempts }));
  const cells = heatCells(p);
  t.is(cells.length, report.cells.length);
  for (const c of report.cells) {
    const b = heatCell(p, c.agent, c.a, c.b);
    t.is(b.attrs['data-outcome'], c.outcome);
    t.is(b.attrs['data-match'], String(c.match));
    t.is(Number(b.attrs['data-rate']), c.successRate.rate);
    t.is(Number(b.attrs['data-successes']), c.successes);
    t.is(Number(b.attrs['data-tries']), c.tries);
    t.is(b.attrs['data-path'], c.path ?? '');
    t.is(b.attrs.type, 'button');
    // its details exist, and its colour is the rate's
    const id = b.attrs['data-cell']!;
    t.true(p.tags.some((x) => x.attrs.id === `d-${id}`), `details of ${id}`);
    t.is(b.attrs['aria-controls'], `d-${id}`);
    t.true((b.attrs.style ?? '').includes(`--c-bg:${rateColour(c.successRate.rate)}`));
  }
  // row and column headers: each NAT type's title and its RFC 4787 mapping and filtering
  t.true(p.text.includes('port-restricted cone'));
  t.true(p.text.includes('EIM · APDF'));
  t.true(p.text.includes('APDM · APDF'));
  // the tries of the symmetric row are listed in its cells' details, with links to their evidence
  t.true(p.tags.some((x) => x.tag === 'a' && x.attrs.href === 'cells/udp/symmetric-vs-port-restricted/try-2/'));
  t.true(p.tags.some((x) => x.tag === 'a' && x.attrs.href === 'cells/tcp/symmetric-vs-full-cone/try-1/a.stderr'));
  t.true(p.text.includes('95 % Wilson interval 0–56 %'));
});

test('a mismatch is outlined and marked with a symbol and what was wanted; an error cell is marked apart', async (t) => {
  const { report, attempts, comparison } = troubled();
  const page = renderHtml(report, { attempts, comparison });
  const p = await parse(page);
  const mis = heatCell(p, 'udp', 'symmetric', 'full-cone');
  t.is(mis.attrs['data-match'], 'false');
  t.is(mis.attrs['data-outcome'], 'failed');
  t.true(mis.attrs.class!.split(' ').includes('mismatch'));
  t.regex(mis.attrs['aria-label']!, /not as expected, expected direct/);
  const err = heatCell(p, 'tcp', 'port-restricted', 'dmz');
  t.true(err.attrs.class!.split(' ').includes('error'));
  t.false(err.attrs.class!.split(' ').includes('mismatch'));
  t.is(err.attrs['data-outcome'], 'error');
  const ok = heatCell(p, 'udp', 'symmetric', 'port-restricted');
  t.true(ok.attrs.class!.split(' ').includes('ok'));
  t.is(ok.attrs['data-match'], 'true');
  // the symbol and the wanted outcome are in the cell's text, not only its colour
  const button = page.slice(page.indexOf(`id="b-${mis.attrs['data-cell']}"`));
  const inner = button.slice(button.indexOf('>') + 1, button.indexOf('</button>'));
  t.true(inner.length > 0 && inner.length < 400, inner);
  t.true(inner.includes('✗'), inner);
  t.true(inner.includes('want direct'), inner);
  // the header's verdict and the list of cells that need a look
  t.true(p.text.includes('2 of 50 cells not as expected, 1 errored (2 flaky)'), 'the verdict');
  t.regex(p.text, /Needs a look \(3\)/);
  t.is(p.tags.filter((x) => x.tag === 'li' && ['mismatch', 'error'].includes(x.attrs.class ?? '')).length, 3);
});

test('with a base run: every cell marked unchanged, improved, regressed or not comparable; a regression with its p-value', async (t) => {
  const { report, attempts, comparison } = troubled();
  const p = await parse(renderHtml(report, { attempts, comparison }));
  const diff = p.tags.filter((x) => (x.attrs.class ?? '').split(' ').includes('dcell') && x.attrs['data-change']);
  t.is(diff.length, report.cells.length, 'one per cell of this run');
  const counts: Record<string, number> = {};
  for (const d of diff) counts[d.attrs['data-change']!] = (counts[d.attrs['data-change']!] ?? 0) + 1;
  t.deepEqual(counts, { unchanged: 47, regressed: 1, improved: 1, 'not comparable': 1 });
  const reg = diff.find((x) => x.attrs['data-change'] === 'regressed')!;
  t.deepEqual([reg.attrs['data-agent'], reg.attrs['data-a'], reg.attrs['data-b'], reg.attrs['data-p']], ['udp', 'symmetric', 'full-cone', '0.00056']);
  t.true(reg.attrs.class!.includes('chg-regressed'));
  t.true(p.text.includes('20/20 → 0/3'));
  t.true(p.text.includes('p = 5.6e-4'));
  t.true(p.text.includes('only in the base run'), 'a cell only the base run had is listed');
  // the heatmap cell carries the change too
  t.is(heatCell(p, 'udp', 'symmetric', 'full-cone').attrs['data-change'], 'regressed');
  t.is(heatCell(p, 'tcp', 'full-cone', 'full-cone').attrs['data-change'], 'improved');
  // without a comparison there is no diff view
  const plain = await parse(renderHtml(report, { attempts }));
  t.false(plain.tags.some((x) => x.attrs.id === 'base-diff'));
  t.false(plain.tags.some((x) => x.attrs['data-change'] !== undefined));
  // a run with --baseline carries its comparison in report.baseline: the page shows it unasked
  const own = await parse(renderHtml({ ...report, baseline: comparison }));
  t.true(own.tags.some((x) => x.attrs.id === 'base-diff'));
  t.is(heatCell(own, 'udp', 'symmetric', 'full-cone').attrs['data-change'], 'regressed');
});

test('several agents: where they differ, as a matrix; time-to-direct per agent as an SVG histogram', async (t) => {
  const { report } = fullMatrix();
  const p = await parse(renderHtml(report));
  const differ = p.tags.filter((x) => x.attrs['data-differ']);
  t.is(differ.length, 25);
  t.is(differ.filter((x) => x.attrs['data-differ'] !== 'none').length, report.comparison.length);
  const outcome = differ.filter((x) => x.attrs['data-differ'] === 'outcome').map((x) => `${x.attrs['data-a']} × ${x.attrs['data-b']}`).sort();
  t.deepEqual(outcome, ['address-restricted × symmetric', 'symmetric × address-restricted']);
  const svgs = p.tags.filter((x) => x.tag === 'svg');
  t.is(svgs.length, 2, 'one histogram per agent');
  t.true(p.text.includes('udp: median 10.7 ms, p90 39.7 ms, max 82.2 ms over 66 connected tries'));
  t.true(p.text.includes('tcp: median 157.8 ms, p90 317.8 ms, max 333.4 ms over 60 connected tries'));
  const bars = p.tags.filter((x) => x.tag === 'rect').length;
  t.true(bars >= 4, `${bars} bars`);
  // one agent: neither the differences nor the agent headings
  const one = await parse(renderHtml(symmetricVsCone().report));
  t.false(one.tags.some((x) => x.attrs['data-differ']));
  t.is(one.tags.filter((x) => x.tag === 'svg').length, 1);
});

test('the header says what part of a run the report holds (a shard) and how adaptive rounds went', async (t) => {
  const { report } = symmetricVsCone();
  report.shard = { index: 2, count: 3, planned: 27 };
  report.options.adaptive = { ciWidth: 0.3, maxTries: 40, rounds: 3, stopped: { interval: 1, settled: 2, error: 0, cap: 0 } };
  const p = await parse(renderHtml(report));
  t.true(p.text.includes('shard 2/3: 9 of the run\'s 27 tries'), p.text.slice(0, 600));
  t.true(p.text.includes('adaptive (95 % interval ≤ 0.3, at most 40 tries a cell): 3 rounds'));
  t.true(p.text.includes('1×3 pairings × 3+ tries'));
});

test('observe mode marks nothing as a mismatch; a report without agents still renders its one matrix', async (t) => {
  const { report } = symmetricVsCone();
  report.options.observe = true;
  for (const c of report.cells) c.expected = null;
  const p = await parse(renderHtml(report));
  t.false(heatCells(p).some((x) => x.attrs.class!.includes('mismatch')));
  t.true(p.text.includes('3 pairings observed (no expectations)'));
  const old: Report = { ...symmetricVsCone().report, agents: [] };
  for (const c of old.cells) c.agent = '';
  const q = await parse(renderHtml(old));
  t.is(heatCells(q).length, 3);
  t.true(q.text.includes('all 3 pairings as expected'));
});

test('the colour scale runs from dark (0 %) to light (100 %), and cell text contrasts with it', (t) => {
  t.is(rateColour(0), '#440154');
  t.is(rateColour(1), '#fde725');
  t.is(rateColour(2), '#fde725');
  t.is(rateColour(Number.NaN), '#440154');
  const { report } = symmetricVsCone();
  const page = renderHtml(report);
  t.true(page.includes('--c-bg:#440154;--c-fg:#ffffff'), 'white on the 0 % colour');
  t.true(page.includes('--c-bg:#fde725;--c-fg:#111111'), 'black on the 100 % colour');
});

test(`a cell's details list at most ${MAX_TRIES_LISTED} tries, those that did not connect first`, async (t) => {
  const { report, attempts } = symmetricVsCone();
  const cell = report.cells.find((c) => c.b === 'full-cone')!;
  const one = attempts.find((x) => x.b === 'full-cone')!;
  const many = Array.from({ length: 50 }, (_, i) => ({ ...structuredClone(one), try: i + 1, evidence: `cells/symmetric-vs-full-cone/try-${i + 1}` }));
  many[41]!.outcome = 'failed';
  many[41]!.reason = 'the one that failed';
  Object.assign(cell, { tries: 50 });
  const page = renderHtml(report, { attempts: [...attempts.filter((x) => x.b !== 'full-cone'), ...many] });
  const p = await parse(page);
  const rows = p.tags.filter((x) => x.tag === 'tr' && /^t-/.test(x.attrs.class ?? ''));
  const forCell = rows.length - attempts.filter((x) => x.b !== 'full-cone').length;
  t.is(forCell, MAX_TRIES_LISTED);
  t.true(p.text.includes('the one that failed'), 'the failed try 42 is listed');
  t.true(p.text.includes('30 more tries not listed'));
  t.true(p.tags.some((x) => x.attrs.href === 'cells/symmetric-vs-full-cone/try-42/'));
  t.false(p.tags.some((x) => x.attrs.href === 'cells/symmetric-vs-full-cone/try-43/'));
});

test('a comparison made by natmatrix compare (compareReports) renders: the regression it finds is marked', async (t) => {
  const base = fullMatrix().report;
  // the base run tried the pairing 20 times, all connected: 0/3 now is significant
  Object.assign(base.cells.find((c) => c.agent === 'udp' && c.a === 'symmetric' && c.b === 'full-cone')!, { tries: 20, successes: 20, paths: { 'direct-udp': 20 } });
  const { report } = troubled();
  const comparison = compareReports(base, report);
  const p = await parse(renderHtml(report, { comparison }));
  const reg = p.tags.filter((x) => x.attrs['data-change'] === 'regressed' && (x.attrs.class ?? '').includes('dcell'));
  t.deepEqual(reg.map((x) => `${x.attrs['data-agent']} ${x.attrs['data-a']} × ${x.attrs['data-b']}`), ['udp symmetric × full-cone']);
  t.true(Number(reg[0]!.attrs['data-p']) < comparison.alpha);
  t.true(p.text.includes(comparison.cells.find((c) => c.change === 'regressed')!.reason));
});
