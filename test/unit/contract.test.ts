// The machine-readable agent contract must describe what the harness really does.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { readVerdict } from '../../harness/judge.ts';

const root = new URL('../../', import.meta.url);
const contract = JSON.parse(readFileSync(new URL('agents/contract.json', root), 'utf8')) as {
  peer: { environment: Record<string, string>; examples: string[] };
  rendezvous: { environment: Record<string, string> };
  relay: { environment: Record<string, string> };
};
const runSource = readFileSync(new URL('harness/run.ts', root), 'utf8');

/** The NMX_ variables the harness sets in the named functions of run.ts (each function's whole body). */
function envSetBy(...fns: string[]): string[] {
  const keys = fns.flatMap((fn) => {
    const start = runSource.indexOf(`function ${fn}(`);
    if (start < 0) throw new Error(`no function ${fn} in run.ts`);
    const body = runSource.slice(start, runSource.indexOf('\n}\n', start));
    return [...body.matchAll(/\b(NMX_[A-Z_]+):/g)].map((m) => m[1]!);
  });
  return [...new Set(keys)].sort();
}

test('the peer environment documented is the one the harness sets', (t) => {
  t.deepEqual(Object.keys(contract.peer.environment).sort(), envSetBy('runPeer', 'publicEnv'));
});

test('the rendezvous environment documented is the one the harness sets', (t) => {
  t.deepEqual(Object.keys(contract.rendezvous.environment).sort(), envSetBy('startRendezvous', 'startService'));
});

test('the relay environment documented is the one the harness sets', (t) => {
  t.deepEqual(Object.keys(contract.relay.environment).sort(), envSetBy('startRelay', 'startService'));
});

test('the documented verdict examples are read as valid verdicts', (t) => {
  const [ok, failed] = contract.peer.examples.map((e) => readVerdict(e));
  t.is(ok?.problem, null);
  t.is(ok?.verdict?.ok, true);
  t.is(ok?.verdict?.timeToDirectMs, 12.3);
  t.is(failed?.verdict?.ok, false);
  t.regex(failed?.verdict?.reason ?? '', /no pong/);
});
