// report.junit.xml: one testcase per cell, failures for cells not as expected (with the evidence path),
// errors for cells in error, nothing failing in observe mode, counts and times that add up, and XML that
// a real parser (python3's xml.etree) reads back, whatever an agent printed.
import test from 'ava';
import { execa } from 'execa';
import { renderJunit, xmlAttr, xmlText } from '../../harness/junit.ts';
import type { Report } from '../../harness/types.ts';
import { FAKE_OUT, HOSTILE, cellOf, fullMatrix, symmetricVsCone, troubled } from '../fixtures/reports/fixtures.ts';

interface Parsed {
  root: { tag: string; attrs: Record<string, string> };
  suites: Array<{
    attrs: Record<string, string>;
    properties: Record<string, string>;
    cases: Array<{
      attrs: Record<string, string>;
      failure: { attrs: Record<string, string>; text: string } | null;
      error: { attrs: Record<string, string>; text: string } | null;
      skipped: { attrs: Record<string, string> } | null;
      out: string;
    }>;
  }>;
}

// python3's ElementTree: a real XML parser, and not ours (it rejects what is not well-formed)
const PARSE = `
import json, sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
def el(e):
    return None if e is None else {'attrs': dict(e.attrib), 'text': e.text or ''}
print(json.dumps({
  'root': {'tag': root.tag, 'attrs': dict(root.attrib)},
  'suites': [{
    'attrs': dict(s.attrib),
    'properties': {p.get('name'): p.get('value') for p in s.findall('properties/property')},
    'cases': [{
      'attrs': dict(c.attrib),
      'failure': el(c.find('failure')),
      'error': el(c.find('error')),
      'skipped': el(c.find('skipped')),
      'out': (c.findtext('system-out') or ''),
    } for c in s.findall('testcase')],
  } for s in root.findall('testsuite')],
}))
`;

async function parse(xml: string): Promise<Parsed> {
  const r = await execa('python3', ['-c', PARSE], { input: xml, reject: false });
  if (r.exitCode !== 0) throw new Error(`python3 could not parse the XML: ${r.stderr}`);
  return JSON.parse(r.stdout) as Parsed;
}

const findCase = (p: Parsed, agent: string, name: string) => {
  const suite = p.suites.find((s) => s.attrs.name?.endsWith(`(${agent})`));
  const c = suite?.cases.find((x) => x.attrs.name === name);
  if (!c) throw new Error(`no testcase ${agent} ${name}`);
  return c;
};

test('a one-agent run: one suite, one testcase per cell, named and classed the common way, all passing', async (t) => {
  const { report, attempts } = symmetricVsCone();
  const p = await parse(renderJunit(report, { attempts }));
  t.is(p.root.tag, 'testsuites');
  t.deepEqual(p.root.attrs.tests, '3');
  t.is(p.root.attrs.failures, '0');
  t.is(p.root.attrs.errors, '0');
  t.is(p.suites.length, 1);
  const [suite] = p.suites;
  t.is(suite!.attrs.name, `natmatrix symmetric-vs-cone (${report.agents[0]!.name})`);
  t.is(suite!.properties['natmatrix.runId'], report.runId);
  t.is(suite!.properties['host.kernel'], report.host.kernel);
  t.deepEqual(suite!.cases.map((c) => c.attrs.name), report.cols.map((b) => `symmetric × ${b}`));
  for (const c of suite!.cases) {
    t.is(c.attrs.classname, `natmatrix.symmetric-vs-cone.${report.agents[0]!.name}`);
    t.is(c.failure, null);
    t.is(c.error, null);
    t.regex(c.out, /95 % Wilson interval \d+–\d+ %/);
    t.regex(c.out, /try 3: /, 'each try is listed');
  }
  const failedCase = suite!.cases.find((c) => c.attrs.name === 'symmetric × port-restricted')!;
  t.regex(failedCase.out, /connected: 0\/3/);
  t.regex(failedCase.out, /reason: a: no pong/);
  t.true(failedCase.out.includes(`evidence: ${report.outDir}/cells/symmetric-vs-port-restricted`));
});

test('a mismatch is a <failure> naming expected and got, with the reasons and the evidence path; an error cell is an <error>', async (t) => {
  const { report, attempts } = troubled();
  const p = await parse(renderJunit(report, { attempts }));
  t.is(p.root.attrs.tests, '50');
  t.is(p.root.attrs.failures, '2', 'the 0/3 cell and the flaky one');
  t.is(p.root.attrs.errors, '1');
  t.is(p.root.attrs.skipped, '0');
  t.deepEqual(p.suites.map((s) => s.attrs.name), ['natmatrix full-matrix (udp)', 'natmatrix full-matrix (tcp)']);
  t.deepEqual(p.suites.map((s) => [s.attrs.tests, s.attrs.failures, s.attrs.errors]), [['25', '2', '0'], ['25', '0', '1']]);

  const mis = findCase(p, 'udp', 'symmetric × full-cone');
  t.is(mis.failure?.attrs.message, 'expected direct, got failed 0/3');
  t.true(mis.failure!.text.includes(`evidence: ${FAKE_OUT}/cells/udp/symmetric-vs-full-cone`), mis.failure!.text);
  t.true(mis.failure!.text.includes('reason: b: no pong within 600 ms of learning peer 203.0.113.22:40000'));
  t.is(mis.error, null);

  const flaky = findCase(p, 'udp', 'dmz × full-cone');
  t.is(flaky.failure?.attrs.message, 'expected direct, got direct via direct-udp 2/3 (flaky: the tries differed)');

  const err = findCase(p, 'tcp', 'port-restricted × dmz');
  t.is(err.failure, null);
  t.truthy(err.error);
  t.true(err.error!.attrs.message!.startsWith('error: 1 of 3 tries errored: agent a exited 2 without a verdict'));
  t.true(err.error!.text.includes(`evidence: ${FAKE_OUT}/cells/tcp/port-restricted-vs-dmz`));

  const fine = findCase(p, 'tcp', 'dmz × dmz');
  t.is(fine.failure, null);
  t.is(fine.error, null);
});

test('observe mode: nothing is a failure, an error still is an error', async (t) => {
  const { report } = troubled();
  report.options.observe = true;
  for (const c of report.cells) {
    c.expected = null;
    c.match = c.outcome !== 'error';
  }
  const xml = renderJunit(report);
  t.false(xml.includes('<failure'));
  const p = await parse(xml);
  t.is(p.root.attrs.failures, '0');
  t.is(p.root.attrs.errors, '1');
  // even a cell the report still marks as not matching is no failure when observing
  cellOf(report, 'udp', 'symmetric', 'full-cone').match = false;
  t.false(renderJunit(report).includes('<failure'));
});

test('hostile agent output in reasons, notes and tries is escaped: the XML parses and reads back as the text', async (t) => {
  const { report, attempts } = troubled();
  const xml = renderJunit(report, { attempts });
  t.false(xml.includes('<script>'), 'no raw markup');
  t.false(xml.includes(']]>'), 'no raw CDATA end');
  t.false(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(xml), 'no control characters (illegal in XML 1.0)');
  const p = await parse(xml);
  const printable = HOSTILE.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
  const mis = findCase(p, 'udp', 'symmetric × full-cone');
  t.true(mis.failure!.text.includes(`reason: a: no pong within 600 ms ${printable}`), mis.failure!.text);
  t.true(mis.out.includes(`reason: a: no pong within 600 ms ${printable}`), 'and in the tries of system-out');
  const err = findCase(p, 'tcp', 'port-restricted × dmz');
  t.true(err.error!.attrs.message!.endsWith(`last line ${printable}`), 'attribute values round-trip too');
  t.true(err.error!.text.includes(`note: agent b left 1 process running when it ended (${printable})`));
});

test('hostile scenario, agent and NAT names are escaped in attributes', async (t) => {
  const { report } = symmetricVsCone();
  const evil = `x"y'z<&>\n\t\u0001`;
  report.scenario = evil;
  report.agents[0]!.name = evil;
  for (const c of report.cells) c.agent = evil;
  report.rows = [evil];
  for (const c of report.cells) c.a = evil;
  const p = await parse(renderJunit(report));
  const clean = evil.replace('\u0001', '');
  t.is(p.suites[0]!.attrs.name, `natmatrix ${clean} (${clean})`, 'newlines and tabs survive as character references');
  t.is(p.suites[0]!.cases[0]!.attrs.name, `${clean} × full-cone`);
  t.false(p.suites[0]!.cases[0]!.attrs.classname!.slice('natmatrix.'.length).includes(' '), 'whitespace in class names is replaced');
});

test('xmlText and xmlAttr escape the five characters and drop what XML 1.0 forbids', (t) => {
  t.is(xmlText('a<b>&c]]>'), 'a&lt;b&gt;&amp;c]]&gt;');
  t.is(xmlAttr(`"'<>&\n`), '&quot;&apos;&lt;&gt;&amp;&#10;');
  t.is(xmlText('ok\u0000\u001b\ufffe\ud800end 😀'), 'okend 😀', 'NUL, ESC, U+FFFE and a lone surrogate go; an astral character stays');
});

test('times are shares of the run: the testcases add up to their suite, the suites to the run, longer tries weigh more', async (t) => {
  const { report, attempts } = symmetricVsCone();
  const p = await parse(renderJunit(report, { attempts }));
  const sum = (xs: Array<{ attrs: Record<string, string> }>) => xs.reduce((s, x) => s + Number(x.attrs.time), 0);
  t.true(Math.abs(Number(p.root.attrs.time) - report.durationMs / 1000) < 0.002);
  t.true(Math.abs(sum(p.suites) - Number(p.root.attrs.time)) < 0.005);
  t.true(Math.abs(sum(p.suites[0]!.cases) - Number(p.suites[0]!.attrs.time)) < 0.005);
  // the failed pairing's tries waited out the punch window: they took longest
  const times = Object.fromEntries(p.suites[0]!.cases.map((c) => [c.attrs.name, Number(c.attrs.time)]));
  t.true(times['symmetric × port-restricted']! > times['symmetric × full-cone']!, JSON.stringify(times));
  // without the tries, every try counts the same
  const even = await parse(renderJunit(report));
  const evenTimes = even.suites[0]!.cases.map((c) => c.attrs.time);
  t.deepEqual(new Set(evenTimes).size, 1, JSON.stringify(evenTimes));
  t.regex(p.root.attrs.timestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
});

test('a pairing of the plan without a cell is skipped; a report without agents is one unnamed suite', async (t) => {
  const { report } = fullMatrix();
  report.cells = report.cells.filter((c) => !(c.agent === 'tcp' && c.a === 'dmz' && c.b === 'dmz'));
  const p = await parse(renderJunit(report));
  t.is(p.root.attrs.skipped, '1');
  t.truthy(findCase(p, 'tcp', 'dmz × dmz').skipped);

  const old: Report = { ...symmetricVsCone().report, agents: [] };
  for (const c of old.cells) c.agent = '';
  const q = await parse(renderJunit(old));
  t.is(q.suites.length, 1);
  t.is(q.suites[0]!.attrs.name, 'natmatrix symmetric-vs-cone');
  t.is(q.suites[0]!.cases[0]!.attrs.classname, 'natmatrix.symmetric-vs-cone');
  t.is(q.suites[0]!.cases.length, 3);
});
