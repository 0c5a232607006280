// NAT registry (names, aliases, RFC 4787 behaviour) and the nft ruleset renderer.
import test from 'ava';
import { NAT_TYPES, findNat, natInfo, natNames, portAllocationOf, renderRuleset, type NatType, type RouterVars } from '../../harness/nat.ts';
import type { Filtering, Mapping } from '../../harness/types.ts';

const EI: Mapping = 'endpoint-independent';
const AD: Mapping = 'address-dependent';
const APD: Mapping = 'address-and-port-dependent';

const TABLE: Array<[name: string, short: string, mapping: Mapping, filtering: Filtering]> = [
  ['dmz', 'DMZ', EI, EI],
  ['full-cone', 'FC', EI, EI],
  ['address-restricted', 'AR', EI, AD],
  ['port-restricted', 'PR', EI, APD],
  ['symmetric', 'SYM', APD, APD],
];

const VARS: RouterVars = {
  WAN: 'wan',
  LAN: 'lan',
  WAN_IP: '203.0.113.20',
  HOST_IP: '10.0.1.10',
  HOST_PORT: 40000,
  LAN_NET: '10.0.1.0/24',
  DMZ_PORT: 41000,
};

function nat(name: string): NatType {
  const t = findNat(name);
  if (!t) throw new Error(`test setup: no NAT type ${name}`);
  return t;
}

/** The text of `chain NAME { ... }` (from the header to its matching close brace). */
function chain(text: string, name: string): string {
  const start = text.indexOf(`chain ${name} {`);
  if (start < 0) return '';
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  return text.slice(start);
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

// ---------------------------------------------------------------------------------------------
// registry

test('registry: the five classic types first, then the rest of the RFC 4787 grid, each combination once, then the DMZ host', (t) => {
  t.deepEqual(natNames().slice(0, 5), TABLE.map(([n]) => n));
  t.is(NAT_TYPES.length, 11);
  const grid = NAT_TYPES.filter((n) => !n.name.startsWith('dmz')).map((n) => `${n.mapping}/${n.filtering}`);
  t.is(new Set(grid).size, 9, 'all nine mapping × filtering combinations, none twice');
  t.deepEqual(natNames().slice(5), ['adm-eif', 'adm-adf', 'adm-apdf', 'apdm-eif', 'apdm-adf', 'dmz-host', 'cloud-eip']);
});

test('dmz-host forwards every new inbound UDP/TCP flow to the host, port unchanged, and masquerades outbound; no knobs', (t) => {
  const t0 = findNat('dmz-host')!;
  t.deepEqual([t0.mapping, t0.filtering, portAllocationOf(t0)], ['endpoint-independent', 'endpoint-independent', 'preserve']);
  const rules = renderRuleset(t0, { WAN: 'wan', LAN: 'lan', WAN_IP: '203.0.113.20', HOST_IP: '10.0.1.10', HOST_PORT: 40000, LAN_NET: '10.0.1.0/24', DMZ_PORT: 41000 });
  t.regex(rules, /iifname \$WAN meta l4proto \{ tcp, udp \} dnat ip to \$HOST_IP\n/);
  t.regex(rules, /oifname \$WAN masquerade persistent/);
  t.false(rules.includes('DMZ_PORT'), 'every port, not one');
  t.is(findNat('dmz-host:hairpin'), undefined);
  t.is(findNat('dmz-host+symmetric')?.layers?.home.name, 'dmz-host', 'a DMZ host behind a carrier NAT is a double NAT');
});

test('canonical behaviour names are aliases of the friendly ones', (t) => {
  t.is(findNat('eim-eif')?.name, 'full-cone');
  t.is(findNat('eim-adf')?.name, 'address-restricted');
  t.is(findNat('eim-apdf')?.name, 'port-restricted');
  t.is(findNat('apdm-apdf')?.name, 'symmetric');
  t.is(findNat('ADM-EIF')?.mapping, 'address-dependent');
});

for (const [name, short, mapping, filtering] of TABLE) {
  test(`${name} is ${mapping} mapping / ${filtering} filtering`, (t) => {
    const n = nat(name);
    t.is(n.name, name);
    t.is(n.short, short);
    t.is(n.mapping, mapping);
    t.is(n.filtering, filtering);
    const learned = filtering === 'address-and-port-dependent' ? [] : ['learn-map.nft'];
    t.deepEqual(n.templates, name === 'dmz' ? ['dmz.nft'] : [`mapping-${mapping}.nft`, ...learned, `filtering-${filtering}.nft`]);
    t.true(n.title.length > 0);
    t.true(n.essence.length > 0);
  });
}

test('natInfo keeps only the public fields', (t) => {
  t.deepEqual(natInfo(nat('port-restricted')), {
    name: 'port-restricted', short: 'PR', title: 'port-restricted cone', mapping: EI, filtering: APD,
  });
});

test('aliases and any letter case resolve to the canonical type', (t) => {
  const cases: Array<[string, string]> = [
    ['restricted-cone', 'address-restricted'],
    ['port-restricted-cone', 'port-restricted'],
    ['sym', 'symmetric'],
    ['SYM', 'symmetric'],
    ['Symmetric', 'symmetric'],
    ['fc', 'full-cone'],
    ['Full-Cone', 'full-cone'],
    ['AR', 'address-restricted'],
    ['pr', 'port-restricted'],
    ['DMZ', 'dmz'],
    ['Restricted-Cone', 'address-restricted'],
  ];
  for (const [alias, canonical] of cases) t.is(findNat(alias)?.name, canonical, alias);
});

test('unknown names return undefined', (t) => {
  for (const name of ['', 'cone', 'symetric', 'full cone', 'nat', 'constructor', '__proto__', 'toString']) {
    t.is(findNat(name), undefined, JSON.stringify(name));
  }
});

// ---------------------------------------------------------------------------------------------
// rendering: structure shared by every type

for (const [name] of TABLE) {
  test(`${name}: rendered ruleset is one well-formed table`, (t) => {
    const text = renderRuleset(nat(name), VARS);
    const lines = text.split('\n');
    t.regex(lines[0]!, /^# /);
    t.true(lines[0]!.includes(name));
    t.is(lines[1], 'flush ruleset');
    t.is(count(text, 'table ip nmx {'), 1);
    t.is(count(text, 'table '), 1);
    t.is(lines.filter((l) => l === 'flush ruleset').length, 1);
    // balanced braces, never closing more than opened
    let depth = 0;
    let minDepth = 0;
    for (const ch of text) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
      minDepth = Math.min(minDepth, depth);
    }
    t.is(depth, 0);
    t.is(minDepth, 0);
    // the table closes on the last line of text, and every define comes before it
    const tableLine = lines.indexOf('table ip nmx {');
    t.is(lines.at(-2), '}');
    t.is(lines.at(-1), '');
    for (const [i, l] of lines.entries()) if (l.startsWith('define ')) t.true(i < tableLine, l);
  });

  test(`${name}: WAN firewall chains are present`, (t) => {
    const text = renderRuleset(nat(name), VARS);
    const wanIn = chain(text, 'wan_in');
    const wanFwd = chain(text, 'wan_fwd');
    t.regex(wanIn, /type filter hook input priority filter;/);
    t.regex(wanIn, /iifname \$WAN ct state established,related accept/);
    t.regex(wanIn, /iifname \$WAN drop/);
    t.regex(wanFwd, /type filter hook forward priority filter;/);
    t.regex(wanFwd, /iifname \$WAN ct status dnat accept/);
    t.regex(wanFwd, /iifname \$WAN drop/);
    // the drop is the last rule: accepts come first
    t.true(wanFwd.indexOf('ct status dnat accept') < wanFwd.indexOf('iifname $WAN drop'));
  });

  test(`${name}: defines exactly the variables it uses`, (t) => {
    const text = renderRuleset(nat(name), VARS);
    const defineLines = text.split('\n').filter((l) => l.startsWith('define '));
    const defined = defineLines.map((l) => /^define ([A-Z_]+) = /.exec(l)?.[1]);
    t.false(defined.includes(undefined), defineLines.join('\n'));
    const body = text.split('\n').filter((l) => !l.startsWith('define ')).join('\n');
    const used = new Set([...body.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
    t.deepEqual([...new Set(defined)].sort(), [...used].sort());
    t.is(new Set(defined).size, defined.length, 'no variable defined twice');
    t.true(used.has('WAN'));
    t.false(used.has('LAN'), 'no template uses $LAN, so it must not be defined');
  });

  test(`${name}: interface names are quoted, addresses and ports bare`, (t) => {
    const text = renderRuleset(nat(name), VARS);
    t.true(text.includes('define WAN = "wan"\n'));
    const expected: Record<string, string> = {
      WAN_IP: 'define WAN_IP = 203.0.113.20',
      HOST_IP: 'define HOST_IP = 10.0.1.10',
      HOST_PORT: 'define HOST_PORT = 40000',
      DMZ_PORT: 'define DMZ_PORT = 41000',
    };
    for (const line of text.split('\n').filter((l) => l.startsWith('define ') && !l.startsWith('define WAN ='))) {
      const key = /^define ([A-Z_]+)/.exec(line)![1]!;
      t.is<string | undefined, string | undefined>(line, expected[key], line);
    }
  });
}

test('the WAN interface name is taken from the vars and quoted', (t) => {
  const text = renderRuleset(nat('symmetric'), { ...VARS, WAN: 'l0a' });
  t.true(text.includes('define WAN = "l0a"\n'));
  t.false(text.includes('define WAN = l0a'));
});

// ---------------------------------------------------------------------------------------------
// rendering: what makes each type behave as it does

test('symmetric: masquerade random, no persistent mapping, no learning', (t) => {
  const text = renderRuleset(nat('symmetric'), VARS);
  t.regex(chain(text, 'post'), /oifname \$WAN masquerade random/);
  t.false(text.includes('persistent'));
  t.false(text.includes('fcmap'));
  t.false(text.includes('arset'));
  t.false(text.includes('dnat ip to'));
});

test('port-restricted: masquerade persistent, no fcmap, no prerouting dnat', (t) => {
  const text = renderRuleset(nat('port-restricted'), VARS);
  t.regex(chain(text, 'post'), /oifname \$WAN masquerade persistent/);
  t.false(text.includes('fcmap'));
  t.false(text.includes('arset'));
  t.false(text.includes('random'));
  t.is(chain(text, 'pre'), '');
});

test('full-cone: fcmap learned after SNAT, prerouting dnat via @fcmap from anyone', (t) => {
  const text = renderRuleset(nat('full-cone'), VARS);
  t.regex(text, /map fcmap \{ type inet_proto \. inet_service : ipv4_addr \. inet_service;/);
  const pre = chain(text, 'pre');
  t.regex(pre, /type nat hook prerouting priority dstnat;/);
  t.regex(pre, /iifname \$WAN meta l4proto \. th dport @fcmap dnat ip to meta l4proto \. th dport map @fcmap/);
  t.regex(chain(text, 'post'), /oifname \$WAN masquerade persistent/);
  const learn = chain(text, 'learn');
  t.regex(learn, /priority srcnat \+ 10;/);
  t.regex(learn, /update @fcmap/);
  t.false(text.includes('arset'));
});

test('address-restricted: arset of contacted addresses gates the dnat', (t) => {
  const text = renderRuleset(nat('address-restricted'), VARS);
  t.regex(text, /set arset \{ type inet_proto \. inet_service \. ipv4_addr;/);
  t.regex(text, /map fcmap \{/);
  const pre = chain(text, 'pre');
  t.regex(pre, /iifname \$WAN meta l4proto \. th dport \. ip saddr @arset dnat ip to meta l4proto \. th dport map @fcmap/);
  t.false(pre.includes('th dport @fcmap'), 'must not forward from anyone');
  t.regex(chain(text, 'learn_addresses'), /meta l4proto \{ tcp, udp \} update @arset \{ meta l4proto \. th sport \. ip daddr \}/);
});

test('dmz: static snat of the host socket and dnat of the forwarded port', (t) => {
  const text = renderRuleset(nat('dmz'), VARS);
  t.regex(chain(text, 'post'), /ip saddr \$HOST_IP meta l4proto \{ tcp, udp \} th sport \$HOST_PORT snat ip to \$WAN_IP:\$DMZ_PORT/);
  t.regex(chain(text, 'pre'), /meta l4proto \{ tcp, udp \} th dport \$DMZ_PORT dnat ip to \$HOST_IP:\$HOST_PORT/);
  // the static snat precedes the catch-all masquerade
  const post = chain(text, 'post');
  t.true(post.indexOf('snat ip to') < post.indexOf('oifname $WAN masquerade'));
  for (const line of ['define WAN_IP = 203.0.113.20', 'define DMZ_PORT = 41000', 'define HOST_IP = 10.0.1.10', 'define HOST_PORT = 40000']) {
    t.true(text.includes(line + '\n'), line);
  }
  t.false(text.includes('fcmap'));
});

test('every type renders a different ruleset', (t) => {
  const texts = TABLE.map(([n]) => renderRuleset(nat(n), VARS));
  t.is(new Set(texts).size, texts.length);
});

test('a template using an unknown variable throws, naming the template and the variable', (t) => {
  const bad: NatType = { ...nat('symmetric'), name: 'bad', templates: ['mapping-endpoint-independent.nft', '../test/fixtures/bad-template.nft'] };
  const err = t.throws(() => renderRuleset(bad, VARS));
  t.true(err?.message.includes('$NOPE'), err?.message);
  t.true(err?.message.includes('bad-template.nft'), err?.message);
});

test('a double NAT "home+carrier" behaves as its stricter layer', (t) => {
  const d = findNat('full-cone+symmetric')!;
  t.is(d.name, 'full-cone+symmetric');
  t.deepEqual([d.mapping, d.filtering], ['address-and-port-dependent', 'address-and-port-dependent']);
  t.deepEqual([d.layers?.home.name, d.layers?.carrier.name], ['full-cone', 'symmetric']);
  const m = findNat('adm-eif+eim-apdf')!;
  t.deepEqual([m.mapping, m.filtering], ['address-dependent', 'address-and-port-dependent'], 'each property from the stricter layer');
  t.is(findNat('FC+PR')?.name, 'full-cone+port-restricted', 'aliases work in each layer');
  t.is(findNat('dmz+full-cone'), undefined, 'a DMZ cannot be a layer');
  t.is(findNat('full-cone+full-cone+full-cone'), undefined);
  t.is(findNat('full-cone+nope'), undefined);
  t.throws(() => renderRuleset(d, VARS), { message: /double NAT: render its home and carrier layers separately/ });
});

test('":hairpin" adds the learned map and the LAN-side dnat + snat; off by default', (t) => {
  t.false(renderRuleset(nat('port-restricted'), VARS).includes('hairpin'));
  const hp = findNat('port-restricted:hairpin')!;
  t.is(hp.name, 'port-restricted:hairpin');
  t.true(hp.hairpin);
  t.deepEqual([hp.mapping, hp.filtering], ['endpoint-independent', 'address-and-port-dependent'], 'hairpinning leaves the behaviour alone');
  const text = renderRuleset(hp, VARS);
  t.regex(chain(text, 'hairpin_in'), /iifname \$LAN ip daddr \$WAN_IP meta l4proto \. th dport @fcmap dnat ip to meta l4proto \. th dport map @fcmap/);
  t.regex(chain(text, 'hairpin_out'), /oifname \$LAN ip saddr \$LAN_NET ct status dnat snat ip to \$WAN_IP/);
  t.regex(text, /define LAN_NET = 10\.0\.1\.0\/24/);
  t.is(text.match(/map fcmap/g)?.length, 1, 'the learned map once, even where filtering already has it');
  t.is(findNat('full-cone:hairpin')!.templates.filter((f) => f === 'learn-map.nft').length, 1);
  t.is(findNat('dmz:hairpin'), undefined);
  t.is(findNat('full-cone:turbo'), undefined);
});

test('knobs: ":ports=random" (EIM only) and ":lifetime=N" render their templates; bad knobs are unknown', (t) => {
  const r = findNat('port-restricted:ports=random')!;
  t.is(r.ports, 'random');
  t.true(r.templates.includes('mapping-endpoint-independent-random.nft'));
  t.false(r.templates.includes('mapping-endpoint-independent.nft'));
  t.regex(chain(renderRuleset(r, VARS), 'post'), /snat ip to \$WAN_IP : jhash ip saddr \. th sport mod 20000 offset 20000/);
  t.is(findNat('symmetric:ports=random'), undefined, 'port allocation is a knob of endpoint-independent mappings');
  const l = findNat('full-cone:lifetime=2:hairpin')!;
  t.is(l.name, 'full-cone:hairpin:lifetime=2', 'knobs are normalised');
  const text = renderRuleset(l, VARS);
  t.regex(text, /ct timeout udp_binding \{ protocol udp; l3proto ip; policy = \{ unreplied: 2, replied: 2 \}; \}/);
  t.regex(text, /map fcmap \{[^}]*timeout 2s; \}/, 'learned maps expire with the binding');
  t.regex(renderRuleset(nat('full-cone'), VARS), /map fcmap \{[^}]*timeout 120s; \}/);
  t.is(findNat('full-cone:lifetime=0'), undefined);
  t.is(findNat('full-cone:lifetime=2:lifetime=3'), undefined);
});

test('knob :no-udp drops every forwarded UDP packet, ahead of the NAT filters', (t) => {
  const n = findNat('port-restricted:no-udp')!;
  t.true(n.noUdp);
  t.is(n.short, 'PR:noUDP');
  const text = renderRuleset(n, VARS);
  t.regex(text, /chain no_udp \{\s+type filter hook forward priority filter - 10; policy accept;\s+meta l4proto udp drop/);
  t.false(renderRuleset(findNat('port-restricted')!, VARS).includes('l4proto udp drop'));
  t.is(findNat('dmz:no-udp'), undefined);
  t.is(findNat('cloud-eip:no-udp'), undefined);
});

test('every router drops what conntrack calls invalid; :invalid=forward keeps Linux\'s default', (t) => {
  const drop = /chain drop_invalid \{\s+type filter hook forward priority filter - 5; policy accept;\s+ct state invalid drop/;
  for (const name of ['full-cone', 'symmetric', 'dmz', 'dmz-host', 'cloud-eip', 'ead-apdf']) {
    const n = findNat(name);
    if (!n) continue;
    t.regex(renderRuleset(n, { ...VARS, PUBLIC_IP: '198.51.100.20' }), drop, name);
  }
  const fwd = findNat('symmetric:invalid=forward')!;
  t.true(fwd.forwardInvalid);
  t.is(fwd.short, 'SYM:fwdINV');
  t.regex(fwd.title, /forwarding invalid packets/);
  t.notRegex(renderRuleset(fwd, VARS), /ct state invalid drop/);
  t.is(findNat('symmetric:invalid=drop'), undefined, 'drop is the default, not a knob');
  t.is(findNat('full-cone:invalid=forward:invalid=forward'), undefined);
  t.is(findNat('dmz:invalid=forward'), undefined);
});

test('cloud-eip: stateless 1:1 public address inbound, a separate random-port gateway outbound', (t) => {
  const n = findNat('cloud-eip')!;
  t.true(n.publicIp);
  t.is(natInfo(n).mapping, APD);
  const text = renderRuleset(n, { ...VARS, PUBLIC_IP: '198.51.100.20' });
  t.true(text.includes('define PUBLIC_IP = 198.51.100.20'));
  t.regex(text, /type filter hook prerouting priority raw;[^}]*iifname \$WAN ip daddr \$PUBLIC_IP notrack ip daddr set \$HOST_IP/);
  t.regex(text, /oifname \$WAN snat ip to \$WAN_IP random/);
  t.regex(text, /iifname \$WAN ct state untracked accept/, 'the WAN firewall lets the untracked inbound packets pass');
  t.throws(() => renderRuleset(n, VARS), { message: /cloud-eip needs PUBLIC_IP/ });
  t.is(findNat('cloud-eip+symmetric'), undefined, 'not a layer of a double NAT');
});
