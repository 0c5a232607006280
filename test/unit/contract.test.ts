// The machine-readable agent contract is generated from the code (harness/contract.ts): the
// environment tables the harness's environments are typed with (agents/sdk/contract.ts), the verdict
// schema the judge validates with, and the manifest schema. It must not drift from them.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { contractJson, PEER_ENV, type PeerEnv, peerEnv } from '../../harness/contract.ts';
import { readVerdict } from '../../harness/judge.ts';

const root = new URL('../../', import.meta.url);
const file = JSON.parse(readFileSync(new URL('agents/contract.json', root), 'utf8')) as {
  peer: { environment: Record<string, string>; examples: string[]; verdictSchema: { properties: Record<string, unknown> } };
  manifest: { schema: { properties: Record<string, unknown> } };
};

test('agents/contract.json is what harness/contract.ts generates (regenerate: node --import tsx harness/contract.ts > agents/contract.json)', (t) => {
  t.deepEqual(file, JSON.parse(JSON.stringify(contractJson())));
});

// harness/agent-env.ts builds every peer environment with peerEnv(), which takes only PEER_ENV's
// variables, as strings, also inside spreads (where a `PeerEnv` annotation checks nothing): a variable
// the harness sets but the contract does not name fails tsc --noEmit. These lines hold peerEnv() to that.
// true when the test runs; to tsc a boolean, so the spread below may or may not add its key
const some: boolean = process.argv.length > 0;
// @ts-expect-error NMX_UNDOCUMENTED is not in PEER_ENV
const literal = peerEnv({ NMX_ROLE: 'a', NMX_UNDOCUMENTED: '1' });
// @ts-expect-error nor inside a conditional spread
const spread = peerEnv({ NMX_ROLE: 'a', ...(some ? { NMX_UNDOCUMENTED: '1' } : {}) });
// @ts-expect-error values are strings
const number = peerEnv({ NMX_LOCAL_PORT: 40000 });
const documented: PeerEnv = peerEnv({ NMX_ROLE: 'a', ...(some ? { NMX_RELAY: '203.0.113.10:12000' } : {}), ...({} as PeerEnv) });

test('the harness sets on a peer only variables of PEER_ENV (type-checked), and the service ones are there', (t) => {
  // at run time peerEnv() passes anything: the check is tsc's (npm test runs tsc --noEmit first)
  t.deepEqual([literal, spread, number, documented].map((e) => Object.keys(e).every((k) => Object.hasOwn(PEER_ENV, k))), [false, false, true, true]);
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
