// The machine-readable agent contract must describe what the harness really does.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { readVerdict } from '../../harness/judge.ts';

const root = new URL('../../', import.meta.url);
const contract = JSON.parse(readFileSync(new URL('agents/contract.json', root), 'utf8')) as {
  peer: { environment: Record<string, string>; examples: string[] };
  rendezvous: { environment: Record<string, string> };
};
const runSource = readFileSync(new URL('harness/run.ts', root), 'utf8');

function envSetBy(fn: string): string[] {
  // the object literal of environment variables the harness passes in `fn`
  const body = runSource.slice(runSource.indexOf(`function ${fn}`));
  const env = body.slice(body.indexOf('env: {'), body.indexOf('}', body.indexOf('env: {')));
  return [...env.matchAll(/\b(NMX_[A-Z_]+):/g)].map((m) => m[1]!).sort();
}

test('the peer environment documented is the one the harness sets', (t) => {
  t.deepEqual(Object.keys(contract.peer.environment).sort(), envSetBy('runPeer'));
});

test('the rendezvous environment documented is the one the harness sets', (t) => {
  t.deepEqual(Object.keys(contract.rendezvous.environment).sort(), envSetBy('startRendezvous'));
});

test('the documented verdict examples are read as valid verdicts', (t) => {
  const [ok, failed] = contract.peer.examples.map((e) => readVerdict(e));
  t.is(ok?.problem, null);
  t.is(ok?.verdict?.ok, true);
  t.is(ok?.verdict?.timeToDirectMs, 12.3);
  t.is(failed?.verdict?.ok, false);
  t.regex(failed?.verdict?.reason ?? '', /no pong/);
});
