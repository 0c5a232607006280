// Rendezvous for agents/fallback: the UDP rendezvous (agents/udp-punch) and the TCP rendezvous
// (agents/tcp-punch) on the same address and port, in one process; one ready line once both are bound.
import { startTcpRendezvous } from '../tcp-punch/rendezvous-server.ts';
import { main } from '../udp-punch/rendezvous-server.ts';

main({ beside: (cfg) => startTcpRendezvous(cfg) });
