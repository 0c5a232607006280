// netpunch rendezvous (entry point): see rendezvous-server.ts.
//
// stdout: one line {"ready":true,"listen":"ip:port"} once the socket is bound; nothing else.
// stderr: a log line for every accepted or rejected datagram, prefixed with the session if known.
// Runs until SIGTERM/SIGINT, then exits 0. Exit 2 on bad environment, 1 if the socket cannot be bound.
import { main } from './rendezvous-server.ts';

main();
