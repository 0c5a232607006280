// Shared by the unit tests that run agents as real processes on loopback: start one (ended by its PID
// at teardown), and pick free UDP ports.
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { execa, type Result, type ResultPromise } from 'execa';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type SpawnOptions = { reject: false; cwd: string; env: Record<string, string>; extendEnv: false; timeout: number };
export type Child = ResultPromise<SpawnOptions>;
export type Res = Result<SpawnOptions>;

/** The test process's environment without any NMX_ variable, so an agent sees only what a test gives. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('NMX_')) env[k] = v;
  return env;
}

/** Start an agent with `node --import tsx`; it is SIGKILLed by PID at teardown if still running. */
export function spawnAgent(t: ExecutionContext, file: string, env: Record<string, string>, timeoutMs = 10_000): Child {
  const child = execa(process.execPath, ['--import', 'tsx', file], {
    cwd: ROOT,
    env: { ...cleanEnv(), ...env },
    extendEnv: false,
    reject: false,
    timeout: timeoutMs,
  });
  t.teardown(async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await child;
  });
  return child;
}

const usedPorts = new Set<number>();

/** A UDP port that is free right now (and not handed out before in this test file). */
export async function freePort(): Promise<number> {
  for (;;) {
    const s = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, '0.0.0.0', () => resolve(s.address().port));
    });
    await new Promise<void>((resolve) => s.close(() => resolve()));
    if (!usedPorts.has(port)) {
      usedPorts.add(port);
      return port;
    }
  }
}
