// netpunch peer (entry point): see punch.ts for the protocol and the verdicts.
import { configOrExit, exitOnSignals, makeLogger, readPeerConfig, report } from '../sdk/index.ts';
import { punchUdp } from './punch.ts';

const cfg = configOrExit(readPeerConfig, 'peer');
exitOnSignals(makeLogger(cfg.role));
void punchUdp(cfg).then(report);
