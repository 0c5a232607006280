// A peer's main: one try per process (the contract's default), or, when the harness started it with
// NMX_SERVE=1 (the manifest says "serve": true), every try of its host from one process: the protocol is
// SERVE's in contract.ts. Starting Node costs a try ~70–260 ms of CPU; a served try costs the handler.
//
//   runPeer(readPeerConfig, (cfg, signal) => punch(cfg, signal));
//
// The handler gets a try's configuration and an AbortSignal (aborted when the harness ends the try
// early) and resolves with its AgentResult once everything it opened is closed again: the next try
// binds the same port. In serve mode the process makes sure of it: when a try leaves a socket, server
// or timer open (process.getActiveResourcesInfo() against what was open before the first try), its
// reply says "last" and the process exits, so the harness starts a new one for the next try; a handler
// that throws, or does not settle within STOP_GRACE_MS of its abort, ends the process too. A try never
// inherits anything of the one before — except what it unref()'d: Node lists only the resources that
// keep it alive, so a handler must close an unref()'d socket or timer itself.
import { createInterface } from 'node:readline';
import { EXIT_CODE, type PeerEnv, SERVE, type ServeReply, type ServeTry } from './contract.ts';
import { configOrExit, type Env, EnvError } from './env.ts';
import { type Logger, makeLogger, quote } from './log.ts';
import { type AgentResult, exitOnSignals, report } from './verdict.ts';

export type PeerHandler<T> = (cfg: T, signal: AbortSignal) => Promise<AgentResult>;

/** How long a stopped try's handler may take to settle before the process ends itself. */
export const STOP_GRACE_MS = 1000;

/** Run a peer: one try from the environment, or (NMX_SERVE=1) every try the harness sends on stdin. */
export function runPeer<T>(read: (env: Env) => T, handler: PeerHandler<T>, tag = 'peer'): void {
  const log = makeLogger(process.env.NMX_ROLE ?? tag);
  exitOnSignals(log);
  if (process.env[SERVE.env] === '1') {
    serveTries(read, handler, log);
    return;
  }
  const cfg = configOrExit(read, tag);
  // a handler that throws is a fault (exit 3), as in serve mode: never a clean failure's exit 1
  handler(cfg, new AbortController().signal).then(report, (err: unknown) => {
    log(`the try threw: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(EXIT_CODE.fault);
  });
}

/** A line of the harness's, parsed: a try, a stop, or what is wrong with it. */
export function parseServeLine(line: string): { try: ServeTry } | { stop: string } | { bad: string } {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return { bad: `not JSON: ${quote(line)}` };
  }
  if (typeof msg === 'object' && msg !== null) {
    const m = msg as Record<string, unknown>;
    if (typeof m.stop === 'string') return { stop: m.stop };
    if (typeof m.try === 'string' && typeof m.env === 'object' && m.env !== null && !Array.isArray(m.env)) {
      const env = m.env as Record<string, unknown>;
      if (Object.values(env).every((v) => typeof v === 'string')) return { try: { try: m.try, env: env as PeerEnv } };
    }
  }
  return { bad: `neither a try nor a stop: ${quote(line)}` };
}

/** Resources that are the process's own, whatever its tries do (stdio, file system requests). */
const OWN = new Set(['PipeWrap', 'TTYWrap', 'FSReqCallback', 'FSReqPromise', 'WriteWrap', 'ShutdownWrap', 'FileHandle', 'SignalWrap']);

/** Open resources by kind (sockets, servers, timers), without the process's own. */
function openResources(): Map<string, number> {
  const count = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) if (!OWN.has(kind)) count.set(kind, (count.get(kind) ?? 0) + 1);
  return count;
}

/**
 * What is open now beyond `before` ("UDPWrap ×1, Timeout ×2"), or '' when nothing is. A closed handle
 * stays listed until the event loop went round once or twice: it is given a few turns to go.
 */
export async function leftOpen(before: Map<string, number>): Promise<string> {
  let left = '';
  for (let turn = 0; turn < 5; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
    left = [...openResources()].filter(([kind, n]) => n > (before.get(kind) ?? 0)).map(([kind, n]) => `${kind} ×${n - (before.get(kind) ?? 0)}`).join(', ');
    if (left === '') return '';
  }
  return left;
}

function serveTries<T>(read: (env: Env) => T, handler: PeerHandler<T>, log: Logger): void {
  const reply = (r: ServeReply) => process.stdout.write(`${JSON.stringify(r)}\n`);
  let current: { id: string; abort: AbortController } | null = null;
  /** stops of tries not started yet (they came in the same read as their try, or queued behind one) */
  const stopped = new Set<string>();
  let queue = Promise.resolve();
  let before: Map<string, number> | null = null;

  const runTry = async ({ try: id, env }: ServeTry): Promise<void> => {
    if (stopped.delete(id)) {
      reply({ try: id, exit: EXIT_CODE.sigterm });
      return;
    }
    let cfg: T;
    try {
      cfg = read({ ...process.env, ...env });
    } catch (err) {
      if (!(err instanceof EnvError)) throw err;
      log(`try ${id}: bad environment: ${err.message}`);
      reply({ try: id, exit: EXIT_CODE.badEnvironment });
      return;
    }
    before ??= openResources();
    const abort = new AbortController();
    current = { id, abort };
    let settle: NodeJS.Timeout | undefined;
    abort.signal.addEventListener('abort', () => {
      settle = setTimeout(() => {
        log(`try ${id} did not end within ${STOP_GRACE_MS} ms of being stopped: exiting`);
        process.exit(EXIT_CODE.sigterm);
      }, STOP_GRACE_MS);
    });
    const result = await handler(cfg, abort.signal);
    clearTimeout(settle);
    current = null;
    const left = await leftOpen(before);
    const last = left === '' ? {} : { last: true };
    reply(abort.signal.aborted ? { try: id, exit: EXIT_CODE.sigterm, ...last } : { try: id, exit: result.code, verdict: result.verdict, ...last });
    if (left) {
      log(`try ${id} left ${left} open: exiting, so that the next try starts in a new process`);
      process.stdout.write('', () => process.exit(0));
      await new Promise(() => {}); // serve nothing more
    }
  };

  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    const msg = parseServeLine(line);
    if ('bad' in msg) {
      log(`bad line on stdin, ${msg.bad}: exiting`);
      process.exit(EXIT_CODE.badEnvironment);
    }
    if ('stop' in msg) {
      if (current?.id === msg.stop) current.abort.abort();
      else stopped.add(msg.stop);
      return;
    }
    // tries are served one at a time, in order (the harness sends the next after the last's reply)
    queue = queue.then(() => runTry(msg.try));
    queue.catch((err: unknown) => {
      log(`try ${msg.try.try} threw: ${(err as Error)?.stack ?? String(err)}`);
      process.exit(EXIT_CODE.fault);
    });
  });
  // no more tries: finish the one running (kept alive meanwhile: its handler may hold nothing that
  // would), then exit
  lines.on('close', () => {
    const alive = setInterval(() => {}, 60_000);
    // the keep-alive is the process's own, not a try's leftover
    before?.set('Timeout', (before.get('Timeout') ?? 0) + 1);
    void queue.then(() => {
      clearInterval(alive);
      process.exit(0);
    });
  });
  process.stdout.write(`${SERVE.ready}\n`);
}
