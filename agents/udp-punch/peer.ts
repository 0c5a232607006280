// netpunch peer (entry point): see punch.ts for the protocol and the verdicts.
import { readPeerConfig, runPeer } from '../sdk/index.ts';
import { punchUdp } from './punch.ts';

runPeer(readPeerConfig, punchUdp);
