// TCP rendezvous for the simultaneous-open agent (entry point): see rendezvous-server.ts. Same
// environment, ready line and signing as agents/udp-punch.
import { configOrExit, readRendezvousConfig, stamp } from '../sdk/index.ts';
import { startTcpRendezvous } from './rendezvous-server.ts';

const cfg = configOrExit(readRendezvousConfig, 'rdv');
startTcpRendezvous(cfg).then(
  (server) => {
    process.stdout.write(JSON.stringify({ ready: true, listen: server.listen }) + '\n');
    const stop = () => {
      // close() waits for open connections: give them half a second
      setTimeout(() => process.exit(0), 500).unref();
      void server.close().finally(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
  (e: Error) => {
    process.stderr.write(`${stamp()} [-] ${e.message}\n`);
    process.exit(1);
  },
);
