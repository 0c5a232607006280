// Logging for agents: stderr only (stdout carries the verdict line and nothing else).

export function stamp(): string {
  return new Date().toISOString();
}

export type Logger = (line: string) => void;

/** A logger that writes `<ISO time> [tag] line` to stderr. */
export function makeLogger(tag: string): Logger {
  return (line) => {
    process.stderr.write(`${stamp()} [${tag}] ${line}\n`);
  };
}

/** JSON-quote a value for a log line, truncated. */
export function quote(v: unknown, max = 60): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** ms rounded to one decimal */
export function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}
