// UDP binding lifetime: a punched path left idle dies behind a NAT whose bindings expire first, and
// keepalives keep it alive. Both sides of the knob, both sides of the keepalive.
import test from 'ava';
import { cell, cli, explain, needsRoot, readReport, tempDir } from './helpers.ts';

if (needsRoot(test)) {
  test('binding-timeout: 2 s bindings lose an idle path, 120 s bindings keep it', async (t) => {
    const out = tempDir('binding');
    const r = await cli(['binding-timeout', '--tries', '1', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    const report = readReport(out);
    const died = cell(report, 'port-restricted', 'port-restricted:lifetime=2');
    t.is(died.outcome, 'failed');
    t.regex(died.reasons.join('\n'), /the path died: no pong within 600 ms after holding it idle for 3500 ms/);
    t.is(cell(report, 'port-restricted', 'port-restricted').outcome, 'direct');
    t.is(cell(report, 'full-cone', 'full-cone:lifetime=2').outcome, 'failed', 'the learned map expires with the binding');
  });

  test('binding-keepalive: keepalives every second keep even 2 s bindings alive', async (t) => {
    const out = tempDir('keepalive');
    const r = await cli(['binding-keepalive', '--tries', '1', '--out', out]);
    t.is(r.exitCode, 0, explain(r, out));
    t.true(readReport(out).cells.every((c) => c.outcome === 'direct'));
  });
}
