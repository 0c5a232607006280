// An independent oracle for the NATs: coturn's turnutils_natdiscovery (a real RFC 5780 client) against
// turnserver on the rendezvous node's two addresses, run behind every router type. It must report the
// same mapping and filtering as the registry declares and as `npm run classify` measures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { classifyOnLab } from '../../harness/classify.ts';
import { buildTopology } from '../../harness/lab.ts';
import { NAT_TYPES } from '../../harness/nat.ts';
import { nsRun } from '../../harness/netns.ts';
import { topologyPlan } from '../../harness/plan.ts';
import { resetRouter } from '../../harness/router.ts';
import { startDaemon } from '../../harness/supervise.ts';
import { Teardown } from '../../harness/teardown.ts';
import { needsRoot } from './helpers.ts';

const WORDS: Record<string, string> = {
  'Endpoint Independent': 'endpoint-independent',
  'Address Dependent': 'address-dependent',
  'Address and Port Dependent': 'address-and-port-dependent',
};

/** "NAT with Address and Port Dependent Mapping!" → address-and-port-dependent */
function verdict(output: string, what: 'Mapping' | 'Filtering'): string {
  const m = output.match(new RegExp(`NAT with (.+) ${what}!`));
  return m ? (WORDS[m[1]!] ?? `unknown: ${m[1]}`) : `no verdict in: ${output.trim().split('\n').slice(-3).join(' | ')}`;
}

const hasCoturn = async () => (await execa('sh', ['-c', 'command -v turnutils_natdiscovery && command -v turnserver'], { reject: false })).exitCode === 0;

if (needsRoot(test)) {
  test('coturn natdiscovery, classify and the registry agree on DMZ, DMZ host and all nine RFC 4787 combinations', async (t) => {
    t.true(await hasCoturn(), 'coturn is missing: sudo npm run setup installs it');
    const teardown = new Teardown();
    const state = mkdtempSync(join(tmpdir(), 'natmatrix-turn-'));
    t.teardown(async () => {
      await teardown.unwind();
      rmSync(state, { recursive: true, force: true });
    });
    const lab = await buildTopology(topologyPlan('oracle', NAT_TYPES.length), teardown);
    const { rendezvous } = lab.plan;
    const turn = startDaemon(
      rendezvous.ns,
      ['/usr/bin/turnserver', '-n', '--no-cli', '--no-tls', '--no-dtls', '-L', rendezvous.ip, '-L', rendezvous.altIp,
        '--pidfile', join(state, 'turn.pid'), '--db', join(state, 'turndb'), '--log-file', 'stdout', '--simple-log'],
      { label: 'turnserver', watch: 'stdout', isReady: (s) => s.includes('Total General servers'), readyTimeoutMs: 10_000, teardown },
    );
    await turn.ready;
    // wait on state: all four RFC 5780 sockets bound
    for (let i = 0; i < 100; i++) {
      const ss = await nsRun(rendezvous.ns, ['ss', '-uln']);
      if ([`${rendezvous.ip}:3478`, `${rendezvous.ip}:3479`, `${rendezvous.altIp}:3478`, `${rendezvous.altIp}:3479`].every((a) => ss.includes(a))) break;
      await new Promise((r) => setTimeout(r, 20));
    }

    const coturn: Record<string, [string, string]> = {};
    await Promise.all(
      NAT_TYPES.map(async (nat, i) => {
        const side = lab.plan.lanes[i]!.a;
        await lab.laneReady(i);
        const run = async (flag: '-m' | '-f') => {
          await resetRouter(side, nat); // fresh NAT state for each discovery
          const r = await execa('ip', ['netns', 'exec', side.host, 'turnutils_natdiscovery', flag, '-L', side.hostIp, '-l', String(side.hostPort), rendezvous.ip], { reject: false, timeout: 30_000 });
          return r.stdout + r.stderr;
        };
        coturn[nat.name] = [verdict(await run('-m'), 'Mapping'), verdict(await run('-f'), 'Filtering')];
      }),
    );

    const measured = await classifyOnLab(lab, [...NAT_TYPES], teardown, state);
    for (const [i, nat] of NAT_TYPES.entries()) {
      t.deepEqual(coturn[nat.name], [nat.mapping, nat.filtering], `coturn on ${nat.name}`);
      t.deepEqual([measured[i]!.measured.mapping, measured[i]!.measured.filtering], [nat.mapping, nat.filtering], `classify on ${nat.name}`);
    }
  });
}
