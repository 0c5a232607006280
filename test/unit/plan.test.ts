// plan(): the pure scenario → topology + attempts step.
import test from 'ava';
import { existsSync } from 'node:fs';
import { hasBridgeNetfilter, isolationRuleset, parseCrossLaneDrops, switchedNotFiltered } from '../../harness/lab.ts';
import { MAX_JOBS, PUBLIC_SUBNET, chooseJobs, defaultJobs, LANE_MEMORY_BYTES, layersOf, newRunId, nsName, parseShard, partnerViews, plan, planNamespaces, serviceAddresses, ShardError, topologyJson, type Plan } from '../../harness/plan.ts';
import { parseScenario, type Scenario } from '../../harness/scenario.ts';
import { DEFAULT_START_COST_MS } from '../../harness/manifest.ts';

const TYPES = ['dmz', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'];
const FAILS = new Set(['symmetric×symmetric', 'symmetric×port-restricted', 'port-restricted×symmetric']);

function fullMatrix(tries = 3): Scenario {
  return parseScenario(
    {
      name: 'fm',
      description: 'full matrix',
      a: TYPES,
      b: TYPES,
      tries,
      timeoutMs: 600,
      expect: Object.fromEntries(TYPES.map((a) => [a, Object.fromEntries(TYPES.map((b) => [b, FAILS.has(`${a}×${b}`) ? 'failed' : 'direct']))])),
    },
    '/tmp/x.ts',
  );
}

function oneByOne(expected: 'direct' | 'failed' = 'direct', tries = 1): Scenario {
  return parseScenario({ name: 'one', description: 'd', a: ['full-cone'], b: ['sym'], tries, expect: { 'full-cone': { sym: expected } } }, '/tmp/x.ts');
}

const RUN = 'abc123';

function ipInSubnet(ip: string): boolean {
  const m = /^203\.0\.113\.(\d{1,3})$/.exec(ip);
  return m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 254;
}

function sides(p: Plan) {
  return p.lanes.flatMap((l) => [l.a, l.b]);
}

test('namespace names are nmx-<runid>-... and unique', (t) => {
  const p = plan(fullMatrix(), { runId: RUN, cpus: 2 });
  const names = planNamespaces(p);
  t.is(names.length, 2 + 4 * p.lanes.length);
  t.is(new Set(names).size, names.length);
  for (const n of names) t.true(n.startsWith(`nmx-${RUN}-`), n);
  t.is(p.internet.ns, `nmx-${RUN}-inet`);
  t.is(p.rendezvous.ns, `nmx-${RUN}-rdv`);
  t.is(nsName(RUN, '0ra'), `nmx-${RUN}-0ra`);
  t.is(p.runId, RUN);
  t.is(p.scenario, 'fm');
});

test('every lane has distinct WAN IPs inside 203.0.113.0/24, apart from the internet and rendezvous addresses', (t) => {
  const p = plan(fullMatrix(10), { runId: RUN, jobs: MAX_JOBS });
  t.is(p.lanes.length, MAX_JOBS);
  t.is(p.internet.subnet, PUBLIC_SUBNET);
  t.is(PUBLIC_SUBNET, '203.0.113.0/24');
  const wanIps = sides(p).map((s) => s.wanIp);
  t.is(new Set(wanIps).size, 2 * MAX_JOBS);
  for (const ip of wanIps) t.true(ipInSubnet(ip), ip);
  t.true(ipInSubnet(p.internet.ip));
  t.true(ipInSubnet(p.rendezvous.ip));
  t.false(wanIps.includes(p.internet.ip));
  t.false(wanIps.includes(p.rendezvous.ip));
  t.not(p.internet.ip, p.rendezvous.ip);
});

test('bridge port names are distinct, at most 15 characters, and clash with nothing in the internet namespace', (t) => {
  const p = plan(fullMatrix(10), { runId: 'abcdefghijkl', jobs: MAX_JOBS });
  const ports = sides(p).map((s) => s.bridgePort);
  t.is(new Set(ports).size, ports.length);
  for (const port of ports) {
    t.true(port.length <= 15, port);
    t.regex(port, /^[a-z0-9]+$/);
  }
  t.false(ports.includes(p.internet.bridge));
  t.false(ports.includes('rdv'));
});

test('each lane pairs an a side and a b side with their own router and host', (t) => {
  const p = plan(fullMatrix(), { runId: RUN, cpus: 1 });
  p.lanes.forEach((l, i) => {
    t.is(l.index, i);
    t.is(l.a.role, 'a');
    t.is(l.b.role, 'b');
    t.not(l.a.router, l.a.host);
    t.not(l.a.lanIp, l.b.lanIp, 'the two LANs of a lane differ');
    t.is(l.a.wanIf, 'wan');
    t.is(l.a.lanIf, 'lan');
  });
});

test('attempts = cells × tries, each with a unique session', (t) => {
  const p = plan(fullMatrix(3), { runId: RUN, cpus: 2 });
  t.is(p.attempts.length, 25 * 3);
  t.is(p.tries, 3);
  t.is(p.timeoutMs, 600);
  const sessions = p.attempts.map((a) => a.session);
  t.is(new Set(sessions).size, sessions.length);
  for (const s of sessions) t.true(s.startsWith(`${RUN}.`), s);
  // every (cell, try) once
  const keys = new Set(p.attempts.map((a) => `${a.cell}/${a.try}`));
  t.is(keys.size, 75);
  for (const a of p.attempts) {
    t.is(a.natA.name, a.a);
    t.is(a.natB.name, a.b);
    t.is(a.expected, FAILS.has(`${a.a}×${a.b}`) ? 'failed' : 'direct');
    t.is(a.cell, TYPES.indexOf(a.a) * 5 + TYPES.indexOf(a.b));
  }
});

test('tries and timeoutMs options override the scenario', (t) => {
  const p = plan(fullMatrix(3), { runId: RUN, tries: 2, timeoutMs: 900, cpus: 1 });
  t.is(p.attempts.length, 50);
  t.is(p.tries, 2);
  t.is(p.timeoutMs, 900);
  t.deepEqual([...new Set(p.attempts.map((a) => a.try))].sort(), [1, 2]);
});

test('aliases in a scenario resolve to their NAT types', (t) => {
  const p = plan(oneByOne('failed', 2), { runId: RUN, cpus: 1 });
  t.is(p.attempts.length, 2);
  t.is(p.attempts[0]!.b, 'sym');
  t.is(p.attempts[0]!.natB.name, 'symmetric');
});

test('attempts expected to fail come first, then by cell and try', (t) => {
  const p = plan(fullMatrix(3), { runId: RUN, cpus: 2 });
  const expected = p.attempts.map((a) => a.expected);
  const firstDirect = expected.indexOf('direct');
  t.is(firstDirect, 9);
  t.true(expected.slice(0, firstDirect).every((e) => e === 'failed'));
  t.true(expected.slice(firstDirect).every((e) => e === 'direct'));
  const order = (xs: typeof p.attempts) => xs.map((a) => a.cell * 1000 + a.try);
  const failing = order(p.attempts.slice(0, firstDirect));
  const direct = order(p.attempts.slice(firstDirect));
  t.deepEqual(failing, [...failing].sort((x, y) => x - y));
  t.deepEqual(direct, [...direct].sort((x, y) => x - y));
});

test('jobs never exceeds the attempts or MAX_JOBS, and lanes = jobs', (t) => {
  const cases: Array<[Scenario, Parameters<typeof plan>[1], number]> = [
    [oneByOne(), { jobs: 50 }, 1],
    [oneByOne('direct', 3), { jobs: 50 }, 3],
    [fullMatrix(3), { jobs: 500 }, 75],
    [fullMatrix(10), { jobs: 500 }, MAX_JOBS],
    [fullMatrix(10), { jobs: 7 }, 7],
    [fullMatrix(10), { cpus: 1000 }, 32],
    [oneByOne('direct', 3), { cpus: 64 }, 3],
  ];
  for (const [s, opts, want] of cases) {
    const p = plan(s, { runId: RUN, ...opts });
    t.is(p.jobs, want, JSON.stringify(opts));
    t.is(p.lanes.length, want);
    t.true(p.jobs <= p.attempts.length);
    t.true(p.jobs <= MAX_JOBS);
  }
});

test('jobs below 1 is rejected', (t) => {
  t.throws(() => plan(oneByOne(), { runId: RUN, jobs: 0 }), { message: /jobs must be at least 1/ });
  t.throws(() => plan(oneByOne(), { runId: RUN, jobs: -3 }), { message: /jobs must be at least 1/ });
});

test('defaultJobs = 2 busy lanes per core + as many idle ones for tries expected to fail, capped by memory, 32 and the tries', (t) => {
  const fm = plan(fullMatrix(3), { runId: RUN, cpus: 1 }).attempts; // 75 attempts, 9 expected to fail
  t.is(defaultJobs(fm, 1), 2 + 2, 'idle lanes never outnumber busy ones');
  t.is(defaultJobs(fm, 2), 4 + 4);
  t.is(defaultJobs(fm, 4), 8 + 8);
  t.is(defaultJobs(fm, 8), 16 + 9, 'all 9 failing tries idle beside 16 busy lanes');
  t.is(defaultJobs(fm, 12), 32);
  t.is(defaultJobs(fm, 100), 32);
  const fm1 = plan(fullMatrix(1), { runId: RUN, cpus: 1 }).attempts; // 25 attempts, 3 failing
  t.is(defaultJobs(fm1, 1), 4);
  t.is(defaultJobs(fm1, 2), 7);
  t.is(defaultJobs(fm1, 16), 25);
  const direct = plan(oneByOne('direct', 2), { runId: RUN, cpus: 1 }).attempts;
  t.is(defaultJobs(direct, 8), 2);
  const failing = plan(oneByOne('failed', 3), { runId: RUN, cpus: 1 }).attempts;
  t.is(defaultJobs(failing, 1), 3);
  t.is(defaultJobs([], 4), 1);
  // memory: half of what is available, LANE_MEMORY_BYTES a lane
  t.is(defaultJobs(fm, 8, false, undefined, 8 * LANE_MEMORY_BYTES), 4);
  t.is(defaultJobs(fm, 8, false, undefined, 0), 1);
  // holding tries idle for seconds: each may have its lane
  t.is(defaultJobs(fm, 2, true), 32);
  t.is(defaultJobs(fm1, 2, true), 25);
  // a costly agent keeps fewer lanes busy per core
  t.is(defaultJobs(fm, 2, false, 4 * DEFAULT_START_COST_MS), 2 + 2);
  // plan uses it when no jobs are given, and says why (for an agent started per try)
  const perTry = fullMatrix(3);
  perTry.agents = perTry.agents.map((x) => ({ ...x, serve: false }));
  const p = plan(perTry, { runId: RUN, cpus: 2, freeMemoryBytes: 64 * LANE_MEMORY_BYTES });
  t.is(p.jobs, 8);
  t.regex(p.jobsWhy ?? '', /^4 busy \(2 per core × 2 cores\), \+ 4 for tries expected to idle \(9 of 75; at most as many as busy\), memory allows 32 /);
  t.regex(plan(fullMatrix(3), { runId: RUN, jobs: 200 }).jobsWhy ?? '', /^--jobs 200, capped at the 75 tries$/);
  t.is(chooseJobs(fm1, 16).why.endsWith('capped at the 25 tries'), true);
});

test('lanes for agents that serve their tries: √ of the run\'s lane time in seconds, at least one per core', (t) => {
  const serving = { windowMs: 600 };
  const fm = plan(fullMatrix(3), { runId: RUN, cpus: 1 }).attempts; // 9 failing × 0.6 s + 66 × 0.05 s = 8.7 s
  t.is(defaultJobs(fm, 2, false, undefined, Infinity, serving), 3);
  t.is(defaultJobs(fm, 1, false, undefined, Infinity, serving), 3);
  t.is(defaultJobs(fm, 6, false, undefined, Infinity, serving), 6, 'at least one per core');
  const fm5 = plan(fullMatrix(5), { runId: RUN, cpus: 1 }).attempts; // 15 × 0.6 + 110 × 0.05 = 14.5 s
  t.is(defaultJobs(fm5, 2, false, undefined, Infinity, serving), 4);
  t.is(defaultJobs(fm, 4, false, undefined, Infinity, { windowMs: 10_000 }), 10, 'longer windows: more lanes (9 × 10 + 3.3 = 93.3 s)');
  t.is(defaultJobs(fm, 2, false, undefined, Infinity, { windowMs: 10_000 }), 8, 'at most 4 per core');
  t.is(defaultJobs(fm, 2, false, undefined, 4 * LANE_MEMORY_BYTES, serving), 2, 'memory still caps');
  t.is(defaultJobs(fm, 2, true, undefined, Infinity, serving), 32, 'holding tries each take a lane');
  // the shipped default agent serves: plan sizes its lanes so, and says why
  const p = plan(fullMatrix(3), { runId: RUN, cpus: 2, freeMemoryBytes: 64 * LANE_MEMORY_BYTES });
  t.is(p.jobs, 3);
  t.regex(p.jobsWhy ?? '', /^3 for agents that serve their tries \(√ of ~9 s of tries: 9 of 75 expected to take up to their 600 ms window; at least 1, at most 4 per core × 2 cores\)/);
});

test('run ids are validated', (t) => {
  for (const bad of ['', 'ABC', 'a-b', 'a.b', 'a b', 'abcdefghijklm', 'ü', '../x']) {
    t.throws(() => plan(oneByOne(), { runId: bad }), { message: /must be 1–12 lower-case letters or digits/ }, JSON.stringify(bad));
  }
  for (const good of ['a', '0', 'abcdefghijkl', 'x9y8']) t.is(plan(oneByOne(), { runId: good }).runId, good);
});

test('newRunId makes valid, varying ids', (t) => {
  const ids = Array.from({ length: 50 }, () => newRunId());
  for (const id of ids) t.regex(id, /^[a-z0-9]{6}$/);
  t.true(new Set(ids).size > 45);
  t.regex(plan(oneByOne()).runId, /^[a-z0-9]{6}$/);
});

test('topologyJson lists every namespace of planNamespaces and every lane', (t) => {
  const p = plan(fullMatrix(3), { runId: RUN, cpus: 2 });
  const topo = JSON.parse(JSON.stringify(topologyJson(p))) as {
    runId: string;
    scenario: string;
    namespaces: string[];
    internet: { namespace: string; address: string };
    rendezvous: { namespace: string; address: string };
    lanes: Array<{ lane: number; a: { router: { namespace: string; wan: string }; host: { namespace: string; agentPort: number } }; b: { router: { namespace: string }; host: { namespace: string } } }>;
  };
  t.is(topo.runId, RUN);
  t.is(topo.scenario, 'fm');
  t.deepEqual(topo.namespaces, planNamespaces(p));
  t.is(topo.internet.namespace, p.internet.ns);
  t.is(topo.internet.address, '203.0.113.1/24');
  t.is(topo.rendezvous.address, `${p.rendezvous.ip}:${p.rendezvous.port}`);
  t.is(topo.lanes.length, p.lanes.length);
  const inLanes = topo.lanes.flatMap((l) => [l.a.router.namespace, l.a.host.namespace, l.b.router.namespace, l.b.host.namespace]);
  const all = new Set([topo.internet.namespace, topo.rendezvous.namespace, ...inLanes]);
  t.deepEqual([...all].sort(), [...planNamespaces(p)].sort());
  t.is(topo.lanes[0]!.a.router.wan, `wan ${p.lanes[0]!.a.wanIp}/24`);
  t.is(topo.lanes[0]!.a.host.agentPort, p.lanes[0]!.a.hostPort);
});

test('a side holding a double NAT gets a home router behind its carrier router, in every lane', (t) => {
  const s = parseScenario(
    { name: 'c', description: 'd', a: ['full-cone+symmetric', 'port-restricted'], b: ['full-cone'], expectModel: 'udp-punch' },
    '/tmp/c.ts',
  );
  t.deepEqual(layersOf(s), { a: 2, b: 1, sameSite: false, publicIp: { a: false, b: false } });
  const p = plan(s, { runId: 'cg1', jobs: 2 });
  for (const lane of p.lanes) {
    t.truthy(lane.a.inner);
    t.is(lane.b.inner, undefined);
    t.is(lane.a.lanIp, '100.64.0.1', "the carrier's LAN is the shared address space");
    t.is(lane.a.inner!.wanIp, '100.64.0.2');
    t.is(lane.a.hostGateway, lane.a.inner!.lanIp);
    t.is(lane.b.hostGateway, lane.b.lanIp);
  }
  t.true(planNamespaces(p).includes('nmx-cg1-0ia'));
  t.is(planNamespaces(p).length, 2 + 2 * 5);
});

test('a same-site column gives side A a second host on its own port; B is then A\'s NAT', (t) => {
  const s = parseScenario(
    { name: 'h', description: 'd', a: ['full-cone:hairpin'], b: ['same-site', 'symmetric'], expect: { 'full-cone:hairpin': { 'same-site': 'direct', symmetric: 'direct' } } },
    '/tmp/h.ts',
  );
  const p = plan(s, { runId: 'hp1', jobs: 1 });
  const host2 = p.lanes[0]!.a.host2!;
  t.deepEqual(host2, { ns: 'nmx-hp1-0ha2', ip: '10.0.1.11', port: 40001 });
  t.is(p.lanes[0]!.b.host2, undefined);
  const same = p.attempts.find((x) => x.b === 'same-site')!;
  t.true(same.sameSite);
  t.is(same.natB.name, 'full-cone:hairpin');
  t.false(p.attempts.find((x) => x.b === 'symmetric')!.sameSite);
  t.true(planNamespaces(p).includes('nmx-hp1-0ha2'));
});

test('a cloud-eip side gets a public address per lane on 198.51.100.0/24, in topology.json too', (t) => {
  const s = parseScenario(
    { name: 'c', description: 'd', a: ['cloud-eip'], b: ['cloud-eip', 'symmetric'], expect: { 'cloud-eip': { 'cloud-eip': 'matconnect', symmetric: 'failed' } } },
    '/tmp/c.ts',
  );
  t.deepEqual(layersOf(s).publicIp, { a: true, b: true });
  const p = plan(s, { runId: 'ce1', jobs: 2 });
  t.deepEqual(p.lanes.map((l) => [l.a.publicIp, l.b.publicIp]), [['198.51.100.20', '198.51.100.21'], ['198.51.100.22', '198.51.100.23']]);
  const json = topologyJson(p) as { lanes: Array<{ a: { host: { publicAddress?: string } } }> };
  t.is(json.lanes[1]!.a.host.publicAddress, '198.51.100.22');
  const none = plan(parseScenario({ name: 'n', description: 'd', a: ['full-cone'], b: ['symmetric'], expect: { 'full-cone': { symmetric: 'direct' } } }, '/tmp/n.ts'), { runId: 'ce2', jobs: 1 });
  t.is(none.lanes[0]!.a.publicIp, undefined);
});

test('partnerViews: each side sees its partner at the partner router\'s public address; same-site also on the LAN', (t) => {
  const p = plan(fullMatrix(1), { runId: RUN, cpus: 2, jobs: 2 });
  const att = p.attempts[0]!;
  const v = partnerViews(p, p.lanes[1]!, att);
  t.deepEqual(v.a, { partner: 'b', addresses: [p.lanes[1]!.b.wanIp], services: serviceAddresses(p) });
  t.deepEqual(v.b, { partner: 'a', addresses: [p.lanes[1]!.a.wanIp], services: serviceAddresses(p) });
  t.notDeepEqual(v.a.addresses, partnerViews(p, p.lanes[0]!, att).a.addresses, 'another lane is another partner');
  t.deepEqual(serviceAddresses(p), ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13']);

  const same = parseScenario({ name: 'ss', description: 'd', a: ['full-cone:hairpin'], b: ['same-site'], expectModel: 'udp-punch' }, '/tmp/x.ts');
  const ps = plan(same, { runId: RUN, cpus: 2 });
  const l = ps.lanes[0]!;
  const sv = partnerViews(ps, l, ps.attempts[0]!);
  t.deepEqual(sv.a.addresses, [l.a.wanIp, l.a.host2!.ip]);
  t.deepEqual(sv.b.addresses, [l.a.wanIp, l.a.hostIp]);

  const cloud = parseScenario({ name: 'c', description: 'd', a: ['cloud-eip'], b: ['cloud-eip'], expect: { 'cloud-eip': { 'cloud-eip': 'matconnect' } } }, '/tmp/x.ts');
  const pc = plan(cloud, { runId: RUN, cpus: 2 });
  const cv = partnerViews(pc, pc.lanes[0]!, pc.attempts[0]!);
  t.deepEqual(cv.a.addresses, [pc.lanes[0]!.b.wanIp, pc.lanes[0]!.b.publicIp!]);
});

test('isolationRuleset: a lane\'s two ports reach each other and rdv only; cross-lane IPv4 is counted per port', (t) => {
  const p = plan(fullMatrix(1), { runId: RUN, cpus: 2, jobs: 3 });
  const rules = isolationRuleset(p);
  t.regex(rules, /^table bridge nmx_lanes \{/);
  t.regex(rules, /elements = \{ "l0a" \. "l0b", "l0b" \. "l0a", "l1a" \. "l1b", "l1b" \. "l1a", "l2a" \. "l2b", "l2b" \. "l2a" \}/);
  t.regex(rules, /iifname "rdv" accept\n\s+oifname "rdv" accept\n\s+iifname \. oifname @lanes accept\n\s+meta protocol != ip accept\n/);
  for (const port of ['l0a', 'l0b', 'l1a', 'l1b', 'l2a', 'l2b']) t.true(rules.includes(`iifname "${port}" counter drop`), port);
  const listing = 'chain forward {\n iifname "l0a" counter packets 0 bytes 0 drop\n iifname "l1a" counter packets 3 bytes 252 drop\n iifname "l1b" counter packets 2 bytes 1 drop\n iifname "l2b" counter packets 7 bytes 9 drop\n}';
  t.deepEqual(parseCrossLaneDrops(listing, p), { 1: 5, 2: 7 });
});

test('shards: every try of the run in exactly one shard, a cell\'s tries spread over them, the plan id shared', (t) => {
  const whole = plan(fullMatrix(20), { runId: RUN, jobs: 4 });
  const key = (a: { cell: number; try: number }) => `${a.cell}.${a.try}`;
  const seen = new Map<string, number>();
  const shards = [1, 2, 3, 4].map((index) => plan(fullMatrix(20), { runId: `r${index}`, jobs: 4, shard: { index, count: 4 } }));
  for (const s of shards) {
    t.is(s.planId, whole.planId, 'shards of one run agree on the plan whatever their run ids');
    t.deepEqual(s.shard, { index: s.shard!.index, count: 4, planned: 500 });
    t.true(s.attempts.length === 125, `shard ${s.shard!.index}: ${s.attempts.length} tries`);
    for (const a of s.attempts) seen.set(key(a), (seen.get(key(a)) ?? 0) + 1);
    // each shard holds tries of every cell: 20 tries dealt over 4 shards is 5 each
    t.is(new Set(s.attempts.map((a) => a.cell)).size, 25);
  }
  t.is(seen.size, 500);
  t.true([...seen.values()].every((n) => n === 1), 'no try runs twice');
  t.deepEqual([...seen.keys()].sort(), whole.attempts.map(key).sort());
  // the expected-to-fail tries (a whole window each) are shared out too
  t.deepEqual(shards.map((s) => s.attempts.filter((a) => a.expected === 'failed').length), [15, 15, 15, 15]);
  // the same shard twice is the same tries
  t.deepEqual(plan(fullMatrix(20), { runId: 'x', shard: { index: 3, count: 4 } }).attempts.map(key), shards[2]!.attempts.map(key));
});

test('the plan id changes with what shapes the tries, not with the run id or the jobs', (t) => {
  const id = plan(fullMatrix(3), { runId: 'a1', jobs: 2 }).planId;
  t.regex(id, /^[0-9a-f]{16}$/);
  t.is(plan(fullMatrix(3), { runId: 'b2', jobs: 9 }).planId, id);
  t.not(plan(fullMatrix(4), { runId: 'a1' }).planId, id, 'tries');
  t.not(plan(fullMatrix(3), { runId: 'a1', timeoutMs: 900 }).planId, id, 'window');
  t.not(plan(fullMatrix(3), { runId: 'a1', observe: true }).planId, id, 'expectations');
  t.not(plan(fullMatrix(3), { runId: 'a1', internetHops: 3 }).planId, id, 'internet depth');
  t.not(plan(oneByOne(), { runId: 'a1' }).planId, id, 'scenario');
});

test('--shard is i/n with 1 ≤ i ≤ n, and a shard must get at least one try', (t) => {
  t.deepEqual(parseShard('2/4'), { index: 2, count: 4 });
  t.deepEqual(parseShard('1/1'), { index: 1, count: 1 });
  for (const bad of ['0/0', '5/4', '0/3', '1/0', 'x', '1/2/3', '-1/4', '1.5/4', '', '1/1001']) t.is(typeof parseShard(bad), 'string', bad);
  t.regex(parseShard('5/4') as string, /i must be 1 to 4/);
  t.throws(() => plan(oneByOne('direct', 2), { runId: RUN, shard: { index: 3, count: 3 } }), { instanceOf: ShardError, message: /only 2 tries, so at most 2 shards/ });
});

test('br_netfilter\'s switch is written only where the kernel has the key', (t) => {
  t.deepEqual(switchedNotFiltered(true), { 'net.bridge.bridge-nf-call-iptables': 0 });
  t.deepEqual(switchedNotFiltered(false), {});
  t.false(hasBridgeNetfilter({ NMX_BR_NETFILTER: 'absent' }));
  t.is(hasBridgeNetfilter({}), existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables'));
});
