// The machine-readable agent contract is generated from the code (harness/contract.ts): the
// environment tables the harness's environments are typed with, the verdict schema the judge validates
// with, and the manifest schema. It must not drift from them.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { contractJson, PEER_ENV } from '../../harness/contract.ts';
import { readVerdict } from '../../harness/judge.ts';

const root = new URL('../../', import.meta.url);
const file = JSON.parse(readFileSync(new URL('agents/contract.json', root), 'utf8')) as {
  peer: { environment: Record<string, string>; examples: string[]; verdictSchema: { properties: Record<string, unknown> } };
  manifest: { schema: { properties: Record<string, unknown> } };
};

test('agents/contract.json is what harness/contract.ts generates (regenerate: node --import tsx harness/contract.ts > agents/contract.json)', (t) => {
  t.deepEqual(file, JSON.parse(JSON.stringify(contractJson())));
});

test('every variable the harness sets on a peer is documented, and the service ones are there', (t) => {
  const runSource = readFileSync(new URL('harness/run.ts', root), 'utf8');
  const set = new Set([...runSource.matchAll(/\b(NMX_[A-Z_]+):/g)].map((m) => m[1]!));
  for (const key of set) t.true(Object.hasOwn(PEER_ENV, key), `${key} is set by run.ts but not in PEER_ENV`);
  for (const key of ['NMX_BUDGET_MS', 'NMX_DEADLINE_MS', 'NMX_STUN', 'NMX_STUN_ALT', 'NMX_TURN', 'NMX_TURN_USER', 'NMX_TURN_PASS', 'NMX_TURN_REALM']) t.true(key in file.peer.environment, key);
});

test('the verdict and manifest schemas carry every field', (t) => {
  t.deepEqual(Object.keys(file.peer.verdictSchema.properties).sort(), ['ok', 'path', 'peer', 'reason', 'steps', 'timeToDirectMs']);
  for (const k of ['peer', 'rendezvous', 'rendezvousScope', 'verdict', 'timing', 'sockets', 'startCostMs', 'services', 'check', 'install', 'expect', 'peerCheck']) {
    t.true(k in file.manifest.schema.properties, k);
  }
});

test('the documented verdict examples are read as valid verdicts', (t) => {
  const [ok, failed] = file.peer.examples.map((e) => readVerdict(e));
  t.is(ok?.problem, null);
  t.is(ok?.verdict?.ok, true);
  t.is(ok?.verdict?.timeToDirectMs, 12.3);
  t.is(failed?.verdict?.ok, false);
  t.regex(failed?.verdict?.reason ?? '', /no pong/);
});
