// netpunch peer (entry point): see punch.ts for the protocol and the verdicts.
import { configOrExit, makeLogger, readPeerConfig } from './protocol.ts';
import { exitOnSignals, punchUdp, report } from './punch.ts';

const cfg = configOrExit(readPeerConfig, 'peer');
exitOnSignals(makeLogger(cfg.role));
void punchUdp(cfg).then(report);
