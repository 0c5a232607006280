// The NAT registry: every NAT behaviour natmatrix can build, named by RFC 4787 (mapping, filtering),
// with its friendly name and the nft template (in nft/) that makes a router behave that way.
// One renderer turns a behaviour plus a router's addresses into a complete, loadable nft ruleset.
import { readFileSync } from 'node:fs';
import { packagePath } from './package.ts';
import type { Filtering, Mapping, NatTypeInfo } from './types.ts';

export interface NatType extends NatTypeInfo {
  /** files in nft/ whose chains make up this type, rendered into one table (none for a double NAT) */
  templates: string[];
  /** one sentence on how the rules achieve the behaviour */
  essence: string;
  /** a double NAT ("home+carrier"): a home router behind a carrier-grade NAT; its mapping and
   * filtering are the stricter of the two layers' (RFC 6888 CGN behind RFC 4787 CPE) */
  layers?: { home: NatType; carrier: NatType };
  /** hairpinning on (":hairpin"): LAN hosts reach each other through the external address */
  hairpin?: boolean;
  /** UDP binding lifetime in seconds (":lifetime=N"); DEFAULT_LIFETIME_S when absent */
  lifetimeS?: number;
  /** how external ports are chosen; endpoint-independent mappings take ":ports=random" */
  ports?: PortAllocation;
  /** the router forwards no UDP (":no-udp"), like networks that let only TCP out */
  noUdp?: boolean;
  /** the router forwards packets conntrack calls invalid, untranslated (":invalid=forward", Linux's
   * default); without it they are dropped, as real routers do (nft/drop-invalid.nft) */
  forwardInvalid?: boolean;
  /** the host has a public address of its own, translated 1:1 (cloud-eip): the side gets one, and its
   * peer agent NMX_PUBLIC_IP */
  publicIp?: boolean;
}

/** preserve: the internal port when free; random: chosen per mapping (a hash of the internal endpoint
 * for EIM, the kernel's random for APDM); hash: derived from the endpoint and the remote address
 * (address-dependent mapping); static: a DMZ's fixed forward. */
export type PortAllocation = 'preserve' | 'random' | 'hash' | 'static';

/** The port allocation a type uses when it names none. */
export function portAllocationOf(t: NatType): PortAllocation {
  if (t.ports) return t.ports;
  if (t.name === 'dmz') return 'static';
  return t.mapping === EI ? 'preserve' : t.mapping === AD ? 'hash' : 'random';
}

const EI: Mapping = 'endpoint-independent';
const AD: Mapping = 'address-dependent';
const APD: Mapping = 'address-and-port-dependent';
const BEHAVIOURS: Mapping[] = [EI, AD, APD];

/** RFC 4787 abbreviations: EIM / ADM / APDM for mapping, EIF / ADF / APDF for filtering. */
const ABBREV: Record<Mapping, string> = { [EI]: 'ei', [AD]: 'ad', [APD]: 'apd' };
const SHORT: Record<Mapping, string> = { [EI]: 'EI', [AD]: 'AD', [APD]: 'APD' };

const MAPPING_ESSENCE: Record<Mapping, string> = {
  [EI]: '`masquerade persistent` (one port-preserving mapping per internal endpoint)',
  [AD]: '`snat` to a port hashed from internal endpoint and remote address (`jhash ip saddr . udp sport . ip daddr`)',
  [APD]: '`masquerade random` (a fresh random port per remote endpoint)',
};
const FILTERING_ESSENCE: Record<Filtering, string> = {
  [EI]: 'dynamic map external port → internal endpoint, learned after SNAT; dnat from anyone',
  [AD]: 'the same map, dnat only when `external port . remote ip` is in a set of addresses the host sent to',
  [APD]: 'conntrack alone: only replies from the exact remote endpoint',
};

/** The friendly names of RFC 3489 and Polykey, for the behaviours they denote. */
const FRIENDLY: Array<[string, string, string, Mapping, Filtering]> = [
  ['full-cone', 'FC', 'full cone', EI, EI],
  ['address-restricted', 'AR', 'address-restricted cone', EI, AD],
  ['port-restricted', 'PR', 'port-restricted cone', EI, APD],
  ['symmetric', 'SYM', 'symmetric', APD, APD],
];

/** Canonical name of a behaviour: "eim-adf" etc. */
export function behaviourName(mapping: Mapping, filtering: Filtering): string {
  return `${ABBREV[mapping]}m-${ABBREV[filtering]}f`;
}

function behaviour(mapping: Mapping, filtering: Filtering): NatType {
  const friendly = FRIENDLY.find(([, , , m, f]) => m === mapping && f === filtering);
  const canonical = behaviourName(mapping, filtering);
  return {
    name: friendly?.[0] ?? canonical,
    short: friendly?.[1] ?? `${SHORT[mapping]}M/${SHORT[filtering]}F`,
    title: friendly?.[2] ?? `${mapping} mapping, ${filtering} filtering`,
    mapping,
    filtering,
    templates: [`mapping-${mapping}.nft`, ...(filtering === APD ? [] : ['learn-map.nft']), `filtering-${filtering}.nft`],
    essence: `${MAPPING_ESSENCE[mapping]}; ${FILTERING_ESSENCE[filtering]}`,
  };
}

/** Every NAT type: Polykey's DMZ (one port), the nine RFC 4787 mapping × filtering combinations (the four
 * with friendly names first), then the DMZ host (every port). */
export const NAT_TYPES: readonly NatType[] = [
  {
    name: 'dmz', short: 'DMZ', title: 'DMZ (static port forward)', mapping: EI, filtering: EI,
    templates: ['dmz.nft'],
    essence: 'static `snat` of the host socket to EXT:PORT plus `dnat` of EXT:PORT back to it',
  },
  ...FRIENDLY.map(([, , , m, f]) => behaviour(m, f)),
  ...BEHAVIOURS.flatMap((m) => BEHAVIOURS.map((f) => [m, f] as const))
    .filter(([m, f]) => !FRIENDLY.some(([, , , fm, ff]) => fm === m && ff === f))
    .map(([m, f]) => behaviour(m, f)),
  {
    name: 'dmz-host', short: 'DMZH', title: 'DMZ host (every port forwarded)', mapping: EI, filtering: EI,
    templates: ['dmz-host.nft'],
    essence: '`dnat` of every new inbound UDP/TCP flow to the host, port unchanged; `masquerade persistent` outbound',
  },
];

/**
 * Not a NAT of the classic kind, so outside NAT_TYPES (classify and the coturn oracle go over those):
 * a cloud host with a public address of its own (seed 000, matconnect). In RFC 4787 terms the host's
 * own traffic meets a symmetric NAT gateway; its 1:1 public address is extra, and open to anyone.
 */
export const CLOUD_EIP: NatType = {
  name: 'cloud-eip', short: 'EIP', title: 'cloud public IP (1:1 inbound) with replies through a separate NAT gateway', mapping: APD, filtering: APD,
  templates: ['cloud-eip.nft'], publicIp: true,
  essence: 'stateless 1:1 `ip daddr set` of the public address (notrack) inbound; outbound `snat` to the gateway address, random ports',
};

/** Every single type a name can resolve to. */
const REGISTRY: readonly NatType[] = [...NAT_TYPES, CLOUD_EIP];

/** The five types of the textbook matrix. */
export const CLASSIC_TYPES = ['dmz', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric'];

const ALIASES: Record<string, string> = {
  'restricted-cone': 'address-restricted',
  'port-restricted-cone': 'port-restricted',
  'fc': 'full-cone', 'ar': 'address-restricted', 'pr': 'port-restricted', 'sym': 'symmetric',
  ...Object.fromEntries(FRIENDLY.map(([name, , , m, f]) => [behaviourName(m, f), name])),
};

export function natNames(): string[] {
  return REGISTRY.map((t) => t.name);
}

/** For messages: every type's name, with its canonical RFC 4787 name where the two differ. */
export function knownNats(): string {
  return REGISTRY.map((t) => {
    const canonical = t.name === 'dmz' || t.name === 'dmz-host' || t.publicIp ? t.name : behaviourName(t.mapping, t.filtering);
    return canonical === t.name ? t.name : `${t.name} (${canonical})`;
  }).join(', ');
}

/** Every name a single NAT type answers to (registry names and aliases, without knobs): what a
 * misspelled one is compared with. */
export function natSpellings(): string[] {
  return [...REGISTRY.map((t) => t.name), ...Object.keys(ALIASES)].sort();
}

/** Default lifetime of learned mappings, in seconds (Linux's UDP "stream" conntrack timeout). */
export const DEFAULT_LIFETIME_S = 120;

/**
 * A single type, optionally with knobs after colons: ":hairpin" turns on RFC 4787 REQ-9 hairpinning
 * (off by default, like Linux); ":lifetime=N" makes UDP bindings (conntrack entries and learned
 * mappings) expire after N idle seconds (RFC 4787 REQ-5 asks for at least 120). Not for a DMZ.
 */
function findSingle(name: string): NatType | undefined {
  const [base, ...knobs] = name.toLowerCase().split(':');
  const canonical = Object.hasOwn(ALIASES, base!) ? ALIASES[base!]! : base;
  const t = REGISTRY.find((x) => x.name === canonical);
  if (!t || knobs.length === 0) return knobs.length ? undefined : t;
  if (t.name === 'dmz' || t.name === 'dmz-host' || t.publicIp) return undefined;
  let hairpin = false;
  let noUdp = false;
  let lifetimeS: number | undefined;
  let ports: 'random' | undefined;
  let forwardInvalid = false;
  for (const knob of knobs) {
    const life = /^lifetime=(\d{1,4})$/.exec(knob);
    const alloc = /^ports=(random)$/.exec(knob);
    if (knob === 'hairpin' && !hairpin) hairpin = true;
    else if (life && lifetimeS === undefined && Number(life[1]) >= 1 && Number(life[1]) <= 3600) lifetimeS = Number(life[1]);
    else if (alloc && ports === undefined && t.mapping === EI) ports = 'random';
    else if (knob === 'no-udp' && !noUdp) noUdp = true;
    else if (knob === 'invalid=forward' && !forwardInvalid) forwardInvalid = true;
    else return undefined;
  }
  const suffix = `${hairpin ? ':hairpin' : ''}${lifetimeS !== undefined ? `:lifetime=${lifetimeS}` : ''}${ports ? `:ports=${ports}` : ''}${noUdp ? ':no-udp' : ''}${forwardInvalid ? ':invalid=forward' : ''}`;
  const learned = t.templates.includes('learn-map.nft') || !hairpin ? [] : ['learn-map.nft'];
  const mapping = (f: string) => (ports && f === `mapping-${EI}.nft` ? `mapping-${EI}-${ports}.nft` : f);
  return {
    ...t,
    name: t.name + suffix,
    short: t.short + suffix.replace(':hairpin', ':HP').replace(/:lifetime=(\d+)/, ':$1s').replace(/:ports=(\w+)/, ':$1').replace(':no-udp', ':noUDP').replace(':invalid=forward', ':fwdINV'),
    title: `${t.title}${hairpin ? ', hairpinning' : ''}${lifetimeS !== undefined ? `, ${lifetimeS} s bindings` : ''}${ports ? `, ${ports} ports` : ''}${noUdp ? ', no UDP' : ''}${forwardInvalid ? ', forwarding invalid packets' : ''}`,
    ...(hairpin ? { hairpin } : {}),
    ...(lifetimeS !== undefined ? { lifetimeS } : {}),
    ...(ports ? { ports } : {}),
    ...(noUdp ? { noUdp } : {}),
    ...(forwardInvalid ? { forwardInvalid } : {}),
    templates: [
      ...t.templates.map(mapping), ...learned, ...(hairpin ? ['hairpin.nft'] : []), ...(lifetimeS !== undefined ? ['binding-lifetime.nft'] : []), ...(noUdp ? ['no-udp.nft'] : []),
    ],
    essence:
      t.essence +
      (hairpin ? '; hairpinning: LAN-side dnat of the external address through the learned map, snat to the external address' : '') +
      (lifetimeS !== undefined ? `; UDP bindings expire after ${lifetimeS} idle seconds (\`ct timeout\` policy, learned maps alike)` : '') +
      (ports === 'random' ? '; ports hashed from the internal endpoint instead of preserved' : '') +
      (noUdp ? '; forwards no UDP at all (`meta l4proto udp drop`)' : '') +
      (forwardInvalid ? '; forwards packets conntrack calls invalid, untranslated (Linux\'s default; real routers drop them)' : ''),
  };
}

const STRICTNESS: Mapping[] = [EI, AD, APD];
const stricter = (x: Mapping, y: Mapping): Mapping => (STRICTNESS.indexOf(x) >= STRICTNESS.indexOf(y) ? x : y);

/**
 * Look a NAT type up by name or alias; "home+carrier" (e.g. "full-cone+symmetric") is a home router
 * behind a carrier-grade NAT. Undefined when unknown (a DMZ cannot be a layer of a double NAT: it
 * forwards one port of one host).
 */
export function findNat(name: string): NatType | undefined {
  const parts = name.split('+');
  if (parts.length === 1) return findSingle(name);
  if (parts.length !== 2) return undefined;
  const [home, carrier] = parts.map(findSingle);
  if (!home || !carrier || home.name === 'dmz' || carrier.name === 'dmz' || home.publicIp || carrier.publicIp) return undefined;
  return {
    name: `${home.name}+${carrier.name}`,
    short: `${home.short}+${carrier.short}`,
    title: `${home.title} behind a ${carrier.title} carrier-grade NAT`,
    mapping: stricter(home.mapping, carrier.mapping),
    filtering: stricter(home.filtering, carrier.filtering),
    templates: [],
    essence: `home router: ${home.essence}; carrier-grade NAT on 100.64.0.0/10: ${carrier.essence}`,
    layers: { home, carrier },
  };
}

export function natInfo(t: NatType): NatTypeInfo {
  return { name: t.name, short: t.short, title: t.title, mapping: t.mapping, filtering: t.filtering };
}

/** The addresses a router's ruleset is rendered with. */
export interface RouterVars {
  /** WAN interface name */
  WAN: string;
  /** LAN interface name */
  LAN: string;
  WAN_IP: string;
  /** the (first) host behind the router and its agent's port */
  HOST_IP: string;
  HOST_PORT: number;
  /** the LAN's prefix, e.g. 10.0.1.0/24 (hairpinning) */
  LAN_NET: string;
  /** external port of the DMZ forward */
  DMZ_PORT: number;
  /** the host's own public address (cloud-eip), when its side has one */
  PUBLIC_IP?: string;
}

/** Templates live in nft/; NMX_NFT_DIR points elsewhere (the tests use it to build a mislabelled router). */
export const NFT_DIR = (process.env.NMX_NFT_DIR ? process.env.NMX_NFT_DIR.replace(/\/?$/, '/') : null) ?? packagePath('nft') + '/';
export const NFT_TABLE = 'nmx';
const templateCache = new Map<string, string>();

function template(file: string): string {
  let text = templateCache.get(file);
  if (text === undefined) {
    text = readFileSync(NFT_DIR + file, 'utf8');
    templateCache.set(file, text);
  }
  return text;
}

/** Every variable a template may use (some, like PUBLIC_IP, only some routers have a value for). */
const ROUTER_VARS: Record<keyof RouterVars, true> = {
  WAN: true, LAN: true, WAN_IP: true, HOST_IP: true, HOST_PORT: true, LAN_NET: true, DMZ_PORT: true, PUBLIC_IP: true,
};

function nftValue(name: keyof RouterVars, value: string | number): string {
  // interface names are nft strings; addresses and ports are bare
  return name === 'WAN' || name === 'LAN' ? JSON.stringify(String(value)) : String(value);
}

/**
 * Render the complete ruleset for one router: `flush ruleset`, the variables the templates use
 * (as nft `define`s), and one table holding the type's chains plus the WAN firewall.
 * Loading it with `nft -f` replaces whatever the router had, dynamic maps included.
 */
/** The ruleset of a router that only forwards (the unused home layer of a two-layer side). */
export const FORWARD_ONLY = 'flush ruleset\n';

export function renderRuleset(type: NatType, vars: RouterVars): string {
  if (type.layers) throw new Error(`${type.name} is a double NAT: render its home and carrier layers separately`);
  const files = [...type.templates, ...(type.forwardInvalid ? [] : ['drop-invalid.nft']), 'wan-firewall.nft'];
  // numbers nft takes only as literals (timeouts) are spelled %LIFETIME% in the templates
  const body = files.map((f) => template(f).replaceAll('%LIFETIME%', String(type.lifetimeS ?? DEFAULT_LIFETIME_S)));
  const used = new Set<string>();
  for (const part of body) for (const m of part.matchAll(/\$([A-Z_]+)/g)) used.add(m[1]!);
  const defines: string[] = [];
  for (const name of [...used].sort()) {
    if (!Object.hasOwn(ROUTER_VARS, name)) {
      const file = files.find((f, i) => body[i]!.includes(`$${name}`));
      throw new Error(`nft template ${file} uses $${name}, which the renderer does not know`);
    }
    const key = name as keyof RouterVars;
    const value = vars[key];
    if (value === undefined) throw new Error(`${type.name} needs ${name}, and this router has none (plan the side with it)`);
    defines.push(`define ${name} = ${nftValue(key, value)}`);
  }
  const indent = (s: string) => s.trimEnd().split('\n').map((l) => (l ? '  ' + l : l)).join('\n');
  // a template may be comments only (address-and-port-dependent filtering adds no rules)
  return [
    `# natmatrix router: ${type.name} (${type.mapping} mapping, ${type.filtering} filtering)`,
    'flush ruleset',
    ...defines,
    `table ip ${NFT_TABLE} {`,
    ...body.map(indent),
    '}',
    '',
  ].join('\n');
}
