// Router helpers (harness/router.ts, harness/routerd.py) against real network namespaces: one python
// process per router namespace loads rulesets through libnftables, empties conntrack with one ctnetlink
// message and snapshots both. Every test builds namespaces of its own (nmx-<run id>-*), touches nothing
// in the root namespace, and only uses TEST-NET addresses.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { findNat } from '../../harness/nat.ts';
import { CommandError, createNamespaces, deleteNamespaces, nsRun, processesIn } from '../../harness/netns.ts';
import { newRunId, type Side } from '../../harness/plan.ts';
import { resetRouter, RouterHelpers, snapshotRouter } from '../../harness/router.ts';
import { Teardown } from '../../harness/teardown.ts';
import { namespaces, needsRoot, tempDir } from './helpers.ts';

/** The longest any one helper step may take before the test gives up on it (a bound, not a measure). */
const BOUND_MS = 20_000;

async function within<T>(what: string, p: Promise<T>, ms = BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** every namespace these tests made (the last hook checks that none is left) */
const created = new Set<string>();

interface Fixture {
  names: string[];
  helpers: RouterHelpers;
  teardown: Teardown;
  /** a scratch folder of this test; the helpers' ruleset files go to rulesets/ in it */
  dir: string;
  rulesetDir: string;
}

/** Namespaces nmx-<fresh run id>-<node> and a RouterHelpers over them, all undone when the test ends. */
async function routers(t: ExecutionContext, nodes: string[]): Promise<Fixture> {
  const id = newRunId();
  const names = nodes.map((n) => `nmx-${id}-${n}`);
  for (const n of names) created.add(n);
  const teardown = new Teardown();
  const dir = tempDir('routerd');
  const rulesetDir = join(dir, 'rulesets');
  const helpers = new RouterHelpers(rulesetDir, teardown);
  t.teardown(async () => {
    try {
      await within('closing the router helpers', helpers.close()).catch(() => {});
      await teardown.unwind();
    } finally {
      await deleteNamespaces(names);
      rmSync(dir, { recursive: true, force: true });
    }
  });
  await createNamespaces(names);
  return { names, helpers, teardown, dir, rulesetDir };
}

/** A ruleset as the harness writes them: it starts with `flush ruleset`, then one NAT table. */
function ruleset(table: string): string {
  return [
    'flush ruleset',
    `table ip ${table} {`,
    '  chain post {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    '    ip saddr 198.51.100.0/24 oifname "wan" masquerade',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** "family name" of every table in the namespace's ruleset, as `nft list ruleset` shows it. */
async function tables(ns: string): Promise<string[]> {
  const listing = await nsRun(ns, ['nft', 'list', 'ruleset']);
  return [...listing.matchAll(/^table (\S+) (\S+) \{/gm)].map((m) => `${m[1]} ${m[2]}`);
}

/** Insert a UDP conntrack entry 203.0.113.1:sport -> 203.0.113.2:2000 in the namespace. */
function insertEntry(ns: string, sport = 1000): Promise<string> {
  return nsRun(ns, ['conntrack', '-I', '-p', 'udp', '-s', '203.0.113.1', '-d', '203.0.113.2', '--sport', String(sport), '--dport', '2000', '-t', '60']);
}

/** The namespace's conntrack entries, one per line (conntrack -L prints them on stdout). */
async function entries(ns: string): Promise<string[]> {
  return (await nsRun(ns, ['conntrack', '-L'])).split('\n').filter((l) => l.trim() !== '');
}

const ENTRY = (sport = 1000) => `src=203.0.113.1 dst=203.0.113.2 sport=${sport} dport=2000`;

/** The processes inside each namespace, by name (processesIn's answer as a plain object). */
function inside(names: string[]): Record<string, Array<{ pid: number; name: string }>> {
  return Object.fromEntries(processesIn(names));
}

/** A single-layer side whose router is `router`, every address in TEST-NET. */
function sideOf(router: string, host: string): Side {
  return {
    role: 'a',
    router,
    host,
    wanIf: 'wan',
    lanIf: 'lan',
    bridgePort: 'l0a',
    wanIp: '203.0.113.20',
    lanIp: '198.51.100.1',
    lanPrefix: 24,
    hostIp: '198.51.100.10',
    hostGateway: '198.51.100.1',
    hostPort: 40000,
    dmzPort: 41000,
  };
}

if (needsRoot(test)) {
  test('reset loads the ruleset in the router namespace, and the next reset replaces it', async (t) => {
    const { names, helpers, rulesetDir } = await routers(t, ['r1']);
    const ns = names[0]!;
    t.true(await within('reset', helpers.reset(ns, ruleset('nmxtest'))), 'python3 and libnftables are here: the helper works');
    const listing = await nsRun(ns, ['nft', 'list', 'ruleset']);
    t.regex(listing, /table ip nmxtest \{/);
    t.regex(listing, /chain post \{\s*type nat hook postrouting priority srcnat; policy accept;/);
    t.regex(listing, /ip saddr 198\.51\.100\.0\/24 oifname "wan" masquerade/);
    t.deepEqual(await tables(ns), ['ip nmxtest']);
    // the ruleset went to the helper as a file in the helpers' folder
    const files = readdirSync(rulesetDir);
    t.is(files.length, 1, files.join(', '));
    t.true(files[0]!.startsWith(`${ns}.`) && files[0]!.endsWith('.nft'), files[0]);
    t.is(readFileSync(join(rulesetDir, files[0]!), 'utf8'), ruleset('nmxtest'));

    // a table that appeared meanwhile (not through the helper) goes with the next reset as well
    await nsRun(ns, ['nft', 'add', 'table', 'ip', 'stray']);
    t.deepEqual(await tables(ns), ['ip nmxtest', 'ip stray']);
    t.true(await within('second reset', helpers.reset(ns, ruleset('nmxother'))));
    t.deepEqual(await tables(ns), ['ip nmxother'], 'the first ruleset and the stray table are gone');
    t.is(readdirSync(rulesetDir).length, 2, 'one file per distinct ruleset');

    // back to the first ruleset: its file is reused
    t.true(await within('third reset', helpers.reset(ns, ruleset('nmxtest'))));
    t.deepEqual(await tables(ns), ['ip nmxtest']);
    t.is(readdirSync(rulesetDir).length, 2);
  });

  test('reset empties the conntrack table of its namespace, every time', async (t) => {
    const { names, helpers } = await routers(t, ['r1']);
    const ns = names[0]!;
    await insertEntry(ns, 1000);
    await insertEntry(ns, 1001);
    const before = await entries(ns);
    t.is(before.length, 2, before.join('\n'));
    t.true(before.some((l) => l.includes(ENTRY(1000))), before.join('\n'));
    t.true(before.some((l) => l.includes(ENTRY(1001))), before.join('\n'));
    t.true(await within('reset', helpers.reset(ns, ruleset('nmxtest'))));
    t.deepEqual(await entries(ns), []);
    // the same helper (and its netlink socket) flushes again on the next reset
    await insertEntry(ns, 1002);
    t.is((await entries(ns)).length, 1);
    t.true(await within('second reset', helpers.reset(ns, ruleset('nmxtest'))));
    t.deepEqual(await entries(ns), []);
  });

  test('a ruleset nft rejects makes reset reject with nft\'s error; the old ruleset stays and the helper keeps working', async (t) => {
    const { names, helpers } = await routers(t, ['r1']);
    const ns = names[0]!;
    t.true(await within('reset', helpers.reset(ns, ruleset('nmxgood'))));
    const bad = 'flush ruleset\ntable ip nmxbad { chain post { type nat hook postrouting priority srcnat; policy acept; } }\n';
    const e = await t.throwsAsync(within('bad reset', helpers.reset(ns, bad)), { instanceOf: CommandError });
    t.true(e!.message.startsWith(`router helper in ${ns}: `), e!.message);
    // nft's own diagnosis: the file and position, the error, and the offending line it echoes
    t.regex(e!.message, new RegExp(`${ns}\\.[0-9a-f]{12}\\.nft:2:\\d+-\\d+: Error: syntax error`), e!.message);
    t.true(e!.message.includes('policy acept;'), e!.message);
    t.false(e!.message.includes('\n'), 'one line');
    // nft loads a file as one transaction: the router still has its previous ruleset
    t.deepEqual(await tables(ns), ['ip nmxgood']);

    // the helper is still there and works for the next valid reset
    await insertEntry(ns);
    t.true(await within('reset after the error', helpers.reset(ns, ruleset('nmxnext'))));
    t.deepEqual(await tables(ns), ['ip nmxnext']);
    t.deepEqual(await entries(ns), []);
    t.is(inside([ns])[ns]!.length, 1, 'still one helper process in the namespace');
  });

  test('nft\'s whole error reaches the message when the ruleset is indented with tabs (the answer\'s fields are tab-separated)', async (t) => {
    const { names, helpers } = await routers(t, ['r1']);
    const ns = names[0]!;
    const bad = 'flush ruleset\ntable ip x {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy acept;\n\t}\n}\n';
    const e = await t.throwsAsync(within('bad reset', helpers.reset(ns, bad)), { instanceOf: CommandError });
    // past the echoed (tab-indented) line: the ^^^ marker under the error comes through too
    t.regex(e!.message, /policy acept;.*\^/, e!.message);
  });

  test('a run folder named with a tab: reset and snapshot say false (done a process per step), never a broken request', async (t) => {
    const { names, dir, teardown } = await routers(t, ['r1']);
    const ns = names[0]!;
    const odd = new RouterHelpers(join(dir, 'run\tfolder', 'rulesets'), teardown);
    t.teardown(() => odd.close());
    t.false(await within('reset', odd.reset(ns, ruleset('nmxodd'))));
    t.false(await within('snapshot', odd.snapshot(ns, join(dir, 'a\tb.nft'), join(dir, 'a.ct'))));
    t.deepEqual(inside([ns])[ns], [], 'no helper was started for it');
  });

  test('a helper that dies is replaced at the next reset, which works', async (t) => {
    const { names, helpers } = await routers(t, ['r1']);
    const ns = names[0]!;
    t.true(await within('reset', helpers.reset(ns, ruleset('nmxfirst'))));
    const [first] = inside([ns])[ns]!;
    process.kill(first!.pid, 'SIGKILL');
    // the next reset starts a new helper (not an error for the rest of the run)
    await insertEntry(ns);
    t.true(await within('reset after the kill', helpers.reset(ns, ruleset('nmxsecond'))));
    t.deepEqual(await tables(ns), ['ip nmxsecond']);
    t.deepEqual(await entries(ns), []);
    const now = inside([ns])[ns]!;
    t.is(now.length, 1, JSON.stringify(now));
    t.not(now[0]!.pid, first!.pid);
  });

  test('snapshot writes the ruleset and the conntrack table into two files, as they are at that moment', async (t) => {
    const { names, helpers, dir } = await routers(t, ['r1']);
    const ns = names[0]!;
    t.true(await within('reset', helpers.reset(ns, ruleset('nmxsnap'))));
    await insertEntry(ns);
    // a change made outside the helper shows in its snapshot (no stale cache)
    await nsRun(ns, ['nft', 'add', 'table', 'ip', 'stray']);
    const [nft1, ct1] = [join(dir, 'one.nft'), join(dir, 'one.conntrack')];
    t.true(await within('snapshot', helpers.snapshot(ns, nft1, ct1)));
    const listed = readFileSync(nft1, 'utf8');
    t.regex(listed, /table ip nmxsnap \{/);
    t.regex(listed, /table ip stray \{/);
    t.is(listed.trim(), (await nsRun(ns, ['nft', 'list', 'ruleset'])).trim(), 'what nft list ruleset shows');
    const tracked = readFileSync(ct1, 'utf8');
    t.true(tracked.includes(ENTRY()), tracked);
    t.regex(tracked, /^udp\s+17\s/m);

    // after a reset to a smaller ruleset, the next snapshot holds only what is there now
    t.true(await within('second reset', helpers.reset(ns, 'flush ruleset\ntable ip nmxsmall {\n}\n')));
    const [nft2, ct2] = [join(dir, 'two.nft'), join(dir, 'two.conntrack')];
    t.true(await within('second snapshot', helpers.snapshot(ns, nft2, ct2)));
    const listed2 = readFileSync(nft2, 'utf8');
    t.regex(listed2, /table ip nmxsmall \{/);
    t.false(listed2.includes('nmxsnap'), listed2);
    t.false(listed2.includes('stray'), listed2);
    t.is(readFileSync(ct2, 'utf8').trim(), '');
    // the first snapshot's files are left as they were
    t.is(readFileSync(nft1, 'utf8'), listed);

    // snapshotRouter names the files after the side and goes through the same helper
    await insertEntry(ns, 1003);
    await within('snapshotRouter', snapshotRouter(sideOf(ns, `${ns}-h`), dir, helpers));
    t.regex(readFileSync(join(dir, 'router-a.nft'), 'utf8'), /table ip nmxsmall \{/);
    t.true(readFileSync(join(dir, 'router-a.conntrack'), 'utf8').includes(ENTRY(1003)));
    t.is(inside([ns])[ns]!.length, 1, 'the snapshots used the one helper');
  });

  test('each router namespace gets its own helper: resets of two namespaces stay apart', async (t) => {
    const { names, helpers } = await routers(t, ['r1', 'r2']);
    const [r1, r2] = [names[0]!, names[1]!];
    const done = await within('two resets', Promise.all([helpers.reset(r1, ruleset('nmxone')), helpers.reset(r2, ruleset('nmxtwo'))]));
    t.deepEqual(done, [true, true]);
    t.deepEqual(await tables(r1), ['ip nmxone']);
    t.deepEqual(await tables(r2), ['ip nmxtwo']);
    const procs = inside([r1, r2]);
    t.is(procs[r1]!.length, 1, JSON.stringify(procs));
    t.is(procs[r2]!.length, 1, JSON.stringify(procs));
    t.regex(procs[r1]![0]!.name, /^python/);
    t.not(procs[r1]![0]!.pid, procs[r2]![0]!.pid);

    // a reset of one router empties only its own conntrack table
    await insertEntry(r1);
    await insertEntry(r2);
    t.true(await within('reset r1', helpers.reset(r1, ruleset('nmxone'))));
    t.deepEqual(await entries(r1), []);
    const kept = await entries(r2);
    t.is(kept.length, 1, kept.join('\n'));
    t.true(kept[0]!.includes(ENTRY()), kept[0]);
    t.deepEqual(await tables(r2), ['ip nmxtwo']);

    // closing one router's helper leaves the other's running and working
    await within('close r1', helpers.close([r1]));
    const after = inside([r1, r2]);
    t.deepEqual(after[r1], []);
    t.deepEqual(after[r2], procs[r2]);
    t.true(await within('reset r2', helpers.reset(r2, ruleset('nmxthree'))));
    t.deepEqual(await tables(r2), ['ip nmxthree']);
    t.deepEqual(await entries(r2), []);
    t.deepEqual(await tables(r1), ['ip nmxone']);
  });

  test('close() ends every helper: no process is left in the namespaces, and a later reset starts a new one', async (t) => {
    const { names, helpers, teardown } = await routers(t, ['r1', 'r2']);
    const [r1, r2] = [names[0]!, names[1]!];
    t.is(teardown.size, 0);
    t.deepEqual(await within('resets', Promise.all(names.map((ns) => helpers.reset(ns, ruleset('nmxclose'))))), [true, true]);
    const before = inside(names);
    t.is(before[r1]!.length, 1);
    t.is(before[r2]!.length, 1);
    t.is(teardown.size, 2, 'each helper is registered for teardown while it runs');
    await within('close', helpers.close());
    t.deepEqual(inside(names), { [r1]: [], [r2]: [] });
    t.is(teardown.size, 0, 'the helpers ended by themselves: nothing left to undo');
    // the namespaces keep the state the helpers gave them
    t.deepEqual(await tables(r1), ['ip nmxclose']);

    // after close, a reset starts a fresh helper
    t.true(await within('reset after close', helpers.reset(r1, ruleset('nmxagain'))));
    t.deepEqual(await tables(r1), ['ip nmxagain']);
    const again = inside(names);
    t.is(again[r1]!.length, 1);
    t.not(again[r1]![0]!.pid, before[r1]![0]!.pid);
    t.deepEqual(again[r2], []);
    await within('second close', helpers.close());
    t.deepEqual(inside(names), { [r1]: [], [r2]: [] });
  });

  test('resetRouter gives a side\'s router the ruleset of its NAT type and an empty conntrack table, through the helper as without it', async (t) => {
    const { names, helpers } = await routers(t, ['ra', 'rb']);
    const [viaHelper, perStep] = [names[0]!, names[1]!];
    const nat = findNat('port-restricted')!;
    t.truthy(nat);
    await insertEntry(viaHelper);
    await insertEntry(perStep);
    await within('resetRouter through the helper', resetRouter(sideOf(viaHelper, `${viaHelper}-h`), nat, helpers));
    await within('resetRouter without helpers', resetRouter(sideOf(perStep, `${perStep}-h`), nat));
    t.is(inside([viaHelper])[viaHelper]!.length, 1, 'the helper did it');
    t.deepEqual(inside([perStep])[perStep], []);
    const listing = await nsRun(viaHelper, ['nft', 'list', 'ruleset']);
    t.regex(listing, /table ip nmx \{/);
    t.regex(listing, /oifname "wan" masquerade persistent/);
    t.regex(listing, /iifname "wan" drop/);
    t.is(listing, await nsRun(perStep, ['nft', 'list', 'ruleset']), 'the same ruleset both ways');
    t.deepEqual(await entries(viaHelper), []);
    t.deepEqual(await entries(perStep), []);

    // another type replaces it, with the side's addresses and ports in its rules
    const dmz = findNat('dmz')!;
    await within('resetRouter to dmz', resetRouter(sideOf(viaHelper, `${viaHelper}-h`), dmz, helpers));
    const dmzListing = await nsRun(viaHelper, ['nft', 'list', 'ruleset']);
    t.false(dmzListing.includes('masquerade persistent'), dmzListing);
    t.true(dmzListing.includes('198.51.100.10'), dmzListing);
    t.true(dmzListing.includes('41000'), dmzListing);
  });

  test('resetRouter on a two-layer side: a double NAT puts a layer on each router, a single NAT leaves the home router forwarding only', async (t) => {
    const { names, helpers } = await routers(t, ['ra', 'ia']);
    const [carrier, home] = [names[0]!, names[1]!];
    const side: Side = {
      ...sideOf(carrier, `${carrier}-h`),
      lanIp: '203.0.113.129',
      inner: { router: home, wanIp: '203.0.113.130', lanIp: '198.51.100.1', lanPrefix: 24 },
    };
    const double = findNat('port-restricted+symmetric')!;
    t.truthy(double?.layers);
    await insertEntry(carrier);
    await insertEntry(home);
    await within('resetRouter double', resetRouter(side, double, helpers));
    // the carrier layer (symmetric: random ports) on the side's router, the home layer on the home router
    const outer = await nsRun(carrier, ['nft', 'list', 'ruleset']);
    const inner = await nsRun(home, ['nft', 'list', 'ruleset']);
    t.regex(outer, /oifname "wan" masquerade random/);
    t.regex(inner, /oifname "wan" masquerade persistent/);
    t.deepEqual(await entries(carrier), []);
    t.deepEqual(await entries(home), []);
    t.is(inside([carrier])[carrier]!.length, 1);
    t.is(inside([home])[home]!.length, 1);

    await insertEntry(home);
    await within('resetRouter single', resetRouter(side, findNat('port-restricted')!, helpers));
    t.regex(await nsRun(carrier, ['nft', 'list', 'ruleset']), /oifname "wan" masquerade persistent/);
    t.deepEqual(await tables(home), [], 'the home router only forwards');
    t.deepEqual(await entries(home), []);

    // a double NAT on a side without a home router is refused before anything changes
    await t.throwsAsync(resetRouter(sideOf(carrier, `${carrier}-h`), double, helpers), { message: /double NAT/ });
    t.regex(await nsRun(carrier, ['nft', 'list', 'ruleset']), /oifname "wan" masquerade persistent/);
  });

  test('without a working helper, reset and snapshot say false and resetRouter and snapshotRouter do it a process per step', async (t) => {
    const { names, helpers, dir } = await routers(t, ['r1']);
    const ns = names[0]!;
    // a python3 that exits without saying ready (as one without libnftables would after "unavailable"):
    // the field is private and readonly to the harness, so the test swaps it from outside
    (helpers as unknown as { python: string | null }).python = '/bin/false';
    t.false(await within('reset', helpers.reset(ns, ruleset('nmxnohelper'))));
    t.false(await within('reset again', helpers.reset(ns, ruleset('nmxnohelper'))));
    t.false(await within('snapshot', helpers.snapshot(ns, join(dir, 'x.nft'), join(dir, 'x.conntrack'))));
    t.deepEqual(await tables(ns), [], 'the helper changed nothing');
    t.deepEqual(inside([ns])[ns], []);

    await insertEntry(ns);
    const side = sideOf(ns, `${ns}-h`);
    await within('resetRouter', resetRouter(side, findNat('symmetric')!, helpers));
    t.regex(await nsRun(ns, ['nft', 'list', 'ruleset']), /oifname "wan" masquerade random/);
    t.deepEqual(await entries(ns), []);
    await insertEntry(ns, 1004);
    await within('snapshotRouter', snapshotRouter(side, dir, helpers));
    t.regex(readFileSync(join(dir, 'router-a.nft'), 'utf8'), /masquerade random/);
    t.true(readFileSync(join(dir, 'router-a.conntrack'), 'utf8').includes(ENTRY(1004)));

    // the absent python3 of a machine without one
    const none = new RouterHelpers(join(dir, 'none'), new Teardown());
    (none as unknown as { python: string | null }).python = null;
    t.false(await within('reset without python3', none.reset(ns, ruleset('nmxnone'))));
    t.deepEqual(inside([ns])[ns], []);
  });

  test.after.always('no namespace of these tests is left', async (t) => {
    // each test's teardown deleted its own namespaces
    const existing = new Set(await namespaces());
    t.deepEqual([...created].filter((n) => existing.has(n)), []);
  });
}
