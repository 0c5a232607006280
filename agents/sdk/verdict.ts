// Ending a peer the contract's way: one verdict line on stdout, then the exit code that agrees with it.
// Signals end it with 128 + the signal's number and no verdict.
import { EXIT_CODE, type Verdict } from './contract.ts';
import type { Logger } from './log.ts';

/** What a peer's attempt came to: the verdict line and the exit code of the contract. */
export interface AgentResult {
  verdict: Verdict;
  code: number;
}

/** A connected verdict's fields: the path that won and the partner as this side reached it, plus
 * anything the agent wants kept (they are printed in the order given). */
export interface ConnectedFields {
  path: string;
  peer: string;
  timeToDirectMs?: number;
  steps?: Verdict['steps'];
  [extra: string]: unknown;
}

/** Connected: exit 0 with `{"ok":true,...fields}`. */
export function connected(fields: ConnectedFields): AgentResult {
  return { verdict: { ok: true, ...fields }, code: EXIT_CODE.connected };
}

/** No path, a clean failure: exit 1 with `{"ok":false,"path":null,"peer":null,"reason":...,...extra}`. */
export function failed(reason: string, extra: Omit<Verdict, 'ok' | 'reason'> = {}): AgentResult {
  return { verdict: { ok: false, path: null, peer: null, reason, ...extra }, code: EXIT_CODE.failed };
}

/** A fault (the try is an error, whatever the verdict says): a verdict like failed's, with exit code 3
 * or `code`. */
export function fault(reason: string, code: number = EXIT_CODE.fault, extra: Omit<Verdict, 'ok' | 'reason'> = {}): AgentResult {
  return { verdict: { ok: false, path: null, peer: null, reason, ...extra }, code };
}

/** Print the verdict line, then exit with the result's code. */
export function report({ verdict, code }: AgentResult): void {
  process.stdout.write(`${JSON.stringify(verdict)}\n`, () => process.exit(code));
}

/** On SIGTERM / SIGINT: log it and exit 143 / 130, printing no verdict (the harness ends a peer so at
 * its deadline, and the try is then an error; an agent that cleans up on the way installs its own). */
export function exitOnSignals(log: Logger): void {
  const onSignal = (sig: NodeJS.Signals, code: number) => () => {
    log(`${sig}: exiting`);
    process.exit(code);
  };
  process.on('SIGTERM', onSignal('SIGTERM', EXIT_CODE.sigterm));
  process.on('SIGINT', onSignal('SIGINT', EXIT_CODE.sigint));
}
