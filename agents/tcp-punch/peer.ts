// TCP peer (entry point): see punch.ts.
import { readPeerConfig, runPeer } from '../sdk/index.ts';
import { punchTcp } from './punch.ts';

runPeer(readPeerConfig, (cfg, signal) => punchTcp(cfg, cfg.session, signal));
