// The expectation model: whether the shipped udp-punch strategy gets a direct path between two NATs,
// derived from their RFC 4787 behaviours instead of typed cell by cell.
//
// The strategy: each peer registers with the rendezvous from its one socket (so the rendezvous learns
// E_A and E_B, each side's mapping towards the rendezvous), then pings the other's E and answers every
// ping at the source it came from (peer-reflexive). The path opens as soon as one ping, say A's to E_B,
// gets through B's filter: B's answer then leaves through the very flow the ping created, so it comes
// from E_B — the endpoint A aimed at — and passes A's filter whatever it is. A's ping gets through when
//   - B filters endpoint-independently; or
//   - B filters by address and maps endpoint-independently: B's own pings to A left from E_B, opening
//     E_B to A's address (with any other mapping they left from another port); or
//   - B filters by address and port, and both map endpoint-independently: B aimed at exactly the
//     endpoint A's pings come from.
// The peers get a direct path when this holds in either direction. A DMZ is endpoint-independent in
// both. It gives the textbook matrix (only SYM×SYM, SYM×PR, PR×SYM fail), and the rfc4787-grid scenario
// checks all 81 pairings of the nine behaviours against real kernels.
//
// (A first version also required B's answer to leave from a mapping A's filter admits; the grid showed
// it always does, because the answer rides the ping's own conntrack entry.)
import type { NatType } from './nat.ts';
import type { Expected } from './types.ts';

const EI = 'endpoint-independent';
const AD = 'address-dependent';

/** Does a ping from a peer behind `from` to the rendezvous-learned endpoint of `to` get in? */
function pingAdmitted(from: NatType, to: NatType): boolean {
  if (to.filtering === EI) return true;
  if (to.filtering === AD) return to.mapping === EI;
  return to.mapping === EI && from.mapping === EI;
}

/** Whether the udp-punch strategy connects a peer behind `a` with one behind `b`. A router that drops
 * UDP (":no-udp") lets nothing through, not even the registration with the rendezvous. */
function udpPunches(a: NatType, b: NatType): boolean {
  if (a.noUdp || b.noUdp) return false;
  return pingAdmitted(a, b) || pingAdmitted(b, a);
}

/**
 * Whether agents/tcp-punch connects them. Its three phases: b listens while a connects to b's mapping
 * (gets through when b's NAT filters endpoint-independently: a's SYN reaches the listener, whatever a's
 * mapping), the same the other way round, then a simultaneous open, which needs both mappings
 * endpoint-independent (each side aims at the other's real mapping, and TCP has no peer-reflexive
 * rescue: a SYN from an unexpected port finds no socket).
 */
function tcpConnects(a: NatType, b: NatType): boolean {
  return a.filtering === EI || b.filtering === EI || (a.mapping === EI && b.mapping === EI);
}

/**
 * What a strategy should achieve between a peer behind `a` and one behind `b`:
 * - udp-punch: the udp-punch agent (direct, or failed);
 * - tcp-punch: the tcp-punch agent (direct-tcp, or failed);
 * - fallback: agents/fallback — UDP punch, then TCP simultaneous open, then the TLS relay, which always
 *   connects (both legs are outbound TCP), so the model names the step that wins.
 */
export function expectedByModel(model: Model, a: NatType, b: NatType): Expected {
  if (model === 'udp-punch') return udpPunches(a, b) ? 'direct' : 'failed';
  if (model === 'tcp-punch') return tcpConnects(a, b) ? 'direct-tcp' : 'failed';
  if (udpPunches(a, b)) return 'direct-udp';
  return tcpConnects(a, b) ? 'direct-tcp' : 'relayed';
}

export const MODELS = ['udp-punch', 'tcp-punch', 'fallback'] as const;
export type Model = (typeof MODELS)[number];
