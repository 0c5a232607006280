// TCP simultaneous open peer (entry point): see punch.ts.
import { configOrExit, makeLogger, readPeerConfig } from '../udp-punch/protocol.ts';
import { exitOnSignals, report } from '../udp-punch/punch.ts';
import { punchTcp } from './punch.ts';

const cfg = configOrExit(readPeerConfig, 'peer');
exitOnSignals(makeLogger(cfg.role));
void punchTcp(cfg).then(report);
