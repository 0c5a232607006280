// TCP peer (entry point): see punch.ts.
import { configOrExit, exitOnSignals, makeLogger, readPeerConfig, report } from '../sdk/index.ts';
import { punchTcp } from './punch.ts';

const cfg = configOrExit(readPeerConfig, 'peer');
exitOnSignals(makeLogger(cfg.role));
void punchTcp(cfg).then(report);
