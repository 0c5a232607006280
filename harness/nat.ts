// The NAT registry: every NAT behaviour natmatrix can build, named by RFC 4787 (mapping, filtering),
// with its friendly name and the nft template (in nft/) that makes a router behave that way.
// One renderer turns a behaviour plus a router's addresses into a complete, loadable nft ruleset.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Filtering, Mapping, NatTypeInfo } from './types.ts';

export interface NatType extends NatTypeInfo {
  /** file in nft/ holding the chains of this type */
  template: string;
  /** one sentence on how the rules achieve the behaviour */
  essence: string;
}

const EI: Mapping = 'endpoint-independent';
const AD: Mapping = 'address-dependent';
const APD: Mapping = 'address-and-port-dependent';

export const NAT_TYPES: readonly NatType[] = [
  {
    name: 'dmz', short: 'DMZ', title: 'DMZ (static port forward)', mapping: EI, filtering: EI as Filtering,
    template: 'dmz.nft',
    essence: 'static `snat` of the host socket to EXT:PORT plus `dnat` of EXT:PORT back to it',
  },
  {
    name: 'full-cone', short: 'FC', title: 'full cone', mapping: EI, filtering: EI,
    template: 'full-cone.nft',
    essence: '`masquerade persistent`; dynamic map of external port → host endpoint, learned after SNAT, dnats from anyone',
  },
  {
    name: 'address-restricted', short: 'AR', title: 'address-restricted cone', mapping: EI, filtering: AD,
    template: 'address-restricted.nft',
    essence: 'full cone, but dnat only when `external port . remote ip` is in a set of addresses the host sent to',
  },
  {
    name: 'port-restricted', short: 'PR', title: 'port-restricted cone', mapping: EI, filtering: APD,
    template: 'port-restricted.nft',
    essence: '`masquerade persistent`: conntrack admits replies from the exact remote endpoint only',
  },
  {
    name: 'symmetric', short: 'SYM', title: 'symmetric', mapping: APD, filtering: APD,
    template: 'symmetric.nft',
    essence: '`masquerade random`: a fresh random external port per remote endpoint',
  },
];

const ALIASES: Record<string, string> = {
  'restricted-cone': 'address-restricted',
  'port-restricted-cone': 'port-restricted',
  'fc': 'full-cone', 'ar': 'address-restricted', 'pr': 'port-restricted', 'sym': 'symmetric',
};

export function natNames(): string[] {
  return NAT_TYPES.map((t) => t.name);
}

/** Look a NAT type up by name or alias; undefined when unknown. */
export function findNat(name: string): NatType | undefined {
  const key = name.toLowerCase();
  const canonical = ALIASES[key] ?? key;
  return NAT_TYPES.find((t) => t.name === canonical);
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
  /** external port of the DMZ forward */
  DMZ_PORT: number;
}

/** Templates live in nft/; NMX_NFT_DIR points elsewhere (the tests use it to build a mislabelled router). */
export const NFT_DIR = (process.env.NMX_NFT_DIR ? process.env.NMX_NFT_DIR.replace(/\/?$/, '/') : null) ?? fileURLToPath(new URL('../nft/', import.meta.url));
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

function nftValue(name: keyof RouterVars, value: string | number): string {
  // interface names are nft strings; addresses and ports are bare
  return name === 'WAN' || name === 'LAN' ? JSON.stringify(String(value)) : String(value);
}

/**
 * Render the complete ruleset for one router: `flush ruleset`, the variables the templates use
 * (as nft `define`s), and one table holding the type's chains plus the WAN firewall.
 * Loading it with `nft -f` replaces whatever the router had, dynamic maps included.
 */
export function renderRuleset(type: NatType, vars: RouterVars): string {
  const body = [template(type.template), template('wan-firewall.nft')];
  const used = new Set<string>();
  for (const part of body) for (const m of part.matchAll(/\$([A-Z_]+)/g)) used.add(m[1]!);
  const defines: string[] = [];
  for (const name of [...used].sort()) {
    if (!(name in vars)) throw new Error(`nft template ${type.template} uses $${name}, which the renderer does not know`);
    const key = name as keyof RouterVars;
    defines.push(`define ${name} = ${nftValue(key, vars[key])}`);
  }
  const indent = (s: string) => s.trimEnd().split('\n').map((l) => (l ? '  ' + l : l)).join('\n');
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
