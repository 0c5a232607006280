// proc: child processes on node:child_process. Only harmless local commands; anything still running
// when a test ends is killed by its own PID.
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, runProc, startProc, type Proc, type ProcOptions, type ProcResult } from '../../harness/proc.ts';

/** startProc, with the child killed (by PID) at the end of the test if it has not ended by then. */
function start(t: ExecutionContext, file: string, args: string[], opts: ProcOptions = {}): Proc & { elapsed: () => Promise<{ r: ProcResult; ms: number }> } {
  const t0 = performance.now();
  const p = startProc(file, args, opts);
  let ended = false;
  const done = p.done.then((r) => {
    ended = true;
    return r;
  });
  t.teardown(() => {
    if (!ended && p.pid !== undefined) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  return { pid: p.pid, done, stop: p.stop, elapsed: async () => ({ r: await done, ms: performance.now() - t0 }) };
}

let tmp = '';
test.before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmx-proc-test-'));
});
test.after.always(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('runProc returns stdout without the trailing newline', async (t) => {
  t.is(await runProc('echo', ['hi']), 'hi');
  t.is(await runProc('printf', ['a\\nb\\n\\n']), 'a\nb\n');
});

test('runProc passes arguments as argv, never through a shell', async (t) => {
  t.is(await runProc('echo', ['$HOME', '; rm -rf /', '`id`']), '$HOME ; rm -rf / `id`');
});

test('a failing command throws CommandError naming the command and its stderr', async (t) => {
  const err = await t.throwsAsync(runProc('sh', ['-c', 'echo partial; echo "disk on fire" >&2; exit 3']), { instanceOf: CommandError });
  t.is(err?.name, 'CommandError');
  t.true(err?.message.startsWith('sh -c '), err?.message);
  t.true(err?.message.includes('disk on fire'), err?.message);
});

test('a failing command without stderr reports its exit code', async (t) => {
  const err = await t.throwsAsync(runProc('sh', ['-c', 'exit 7']), { instanceOf: CommandError });
  t.true(err?.message.endsWith('exit code 7'), err?.message);
});

test('CommandError keeps at most three stderr lines, joined by " | "', async (t) => {
  const err = await t.throwsAsync(runProc('sh', ['-c', 'printf "l1\\nl2\\nl3\\nl4\\n" >&2; exit 1']), { instanceOf: CommandError });
  t.true(err?.message.endsWith(': l1 | l2 | l3'), err?.message);
});

test('a missing binary throws promptly instead of hanging', async (t) => {
  t.timeout(5000);
  const t0 = performance.now();
  const err = await t.throwsAsync(runProc('nmx-no-such-binary-xyz', ['--flag']), { instanceOf: CommandError });
  t.true(performance.now() - t0 < 2000);
  t.true(err?.message.startsWith('nmx-no-such-binary-xyz --flag: '), err?.message);
  t.true(err?.message.includes('ENOENT'), err?.message);
  t.truthy(err?.cause);
});

test('startProc on a missing binary resolves with spawnError', async (t) => {
  t.timeout(5000);
  const p = start(t, 'nmx-no-such-binary-xyz', []);
  t.is(p.pid, undefined);
  const r = await p.done;
  t.is(r.exitCode, null);
  t.is(r.signal, null);
  t.false(r.timedOut);
  t.is((r.spawnError as NodeJS.ErrnoException | null)?.code, 'ENOENT');
});

test('timeoutMs ends `sleep 5` with SIGTERM well before it ends by itself, and reports timedOut', async (t) => {
  t.timeout(5000);
  const p = start(t, 'sleep', ['5'], { timeoutMs: 200 });
  t.true(typeof p.pid === 'number');
  const { r, ms } = await p.elapsed();
  t.true(r.timedOut);
  t.is(r.signal, 'SIGTERM');
  t.is(r.exitCode, null);
  t.is(r.spawnError, null);
  t.true(ms >= 190, `${ms} ms`);
  // ended by the deadline, long before sleep's own 5 s (how fast is a bench matter, not a test's)
  t.true(ms < 4000, `${ms} ms`);
});

test('a child that ignores SIGTERM is SIGKILLed killGraceMs later', async (t) => {
  t.timeout(5000);
  const script = 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000);';
  const p = start(t, process.execPath, ['-e', script], { timeoutMs: 700, killGraceMs: 150 });
  const { r, ms } = await p.elapsed();
  t.is(r.stdout, 'ready\n');
  t.true(r.timedOut);
  t.is(r.signal, 'SIGKILL');
  t.true(ms >= 840, `${ms} ms`);
  t.true(ms < 4000, `ended by the SIGKILL, not left running: ${ms} ms`);
});

test('a command that ends in time is not marked timedOut', async (t) => {
  const { r } = await start(t, 'echo', ['quick'], { timeoutMs: 2000 }).elapsed();
  t.false(r.timedOut);
  t.is(r.exitCode, 0);
  t.is(r.stdout, 'quick\n');
});

test('input reaches the child', async (t) => {
  const { r } = await start(t, 'cat', [], { input: 'line one\nline two' }).elapsed();
  t.is(r.stdout, 'line one\nline two');
  t.is(r.exitCode, 0);
  t.is(await runProc('cat', [], 'via runProc\n'), 'via runProc');
});

test('empty input closes stdin, so cat ends', async (t) => {
  t.timeout(5000);
  const { r } = await start(t, 'cat', [], { input: '' }).elapsed();
  t.is(r.stdout, '');
  t.is(r.exitCode, 0);
});

test('a child that exits without reading its input does not break the harness', async (t) => {
  const { r } = await start(t, 'true', [], { input: 'x'.repeat(1_000_000) }).elapsed();
  t.is(r.exitCode, 0);
});

test('env is added to the inherited environment', async (t) => {
  const { r } = await start(t, 'sh', ['-c', 'printf "%s|%s" "$NMX_TEST_VAR" "$PATH"'], { env: { NMX_TEST_VAR: 'v1' } }).elapsed();
  t.is(r.stdout, `v1|${process.env.PATH}`);
});

test('stdoutFile and stderrFile receive the output, and it is still collected', async (t) => {
  const stdoutFile = join(tmp, 'out.log');
  const stderrFile = join(tmp, 'err.log');
  const { r } = await start(t, 'sh', ['-c', 'echo to-out; echo to-err >&2; echo more-out'], { stdoutFile, stderrFile }).elapsed();
  t.is(r.stdout, 'to-out\nmore-out\n');
  t.is(r.stderr, 'to-err\n');
  // the files are complete once done resolves
  t.is(await readFile(stdoutFile, 'utf8'), 'to-out\nmore-out\n');
  t.is(await readFile(stderrFile, 'utf8'), 'to-err\n');
});

test('onStdout sees every chunk', async (t) => {
  const chunks: string[] = [];
  const { r } = await start(t, 'printf', ['abc\\ndef\\n'], { onStdout: (c) => chunks.push(c) }).elapsed();
  t.is(chunks.join(''), 'abc\ndef\n');
  t.is(r.stdout, 'abc\ndef\n');
});

test('maxBuffer overflow kills the child and is reported', async (t) => {
  t.timeout(5000);
  const { r, ms } = await start(t, 'yes', [], { maxBuffer: 10_000 }).elapsed();
  t.true(r.overflow);
  t.is(r.signal, 'SIGKILL');
  t.false(r.timedOut);
  t.true(r.stdout.length <= 10_000, `${r.stdout.length}`);
  // what was kept is whole chunks below the limit (the chunk that crossed it is dropped, so with
  // `yes` writing 64 KiB at a time this is usually nothing)
  t.regex(r.stdout, /^(y\n)*$/);
  t.true(ms < 4000, `ended by the overflow, not by the test's timeout: ${ms} ms`);
});

test('output within maxBuffer is not an overflow', async (t) => {
  const { r } = await start(t, 'printf', ['%s', 'x'.repeat(500)], { maxBuffer: 10_000 }).elapsed();
  t.false(r.overflow);
  t.is(r.stdout.length, 500);
});

test('exit code and signal are reported for a plain non-zero exit', async (t) => {
  const { r } = await start(t, 'sh', ['-c', 'echo oops >&2; exit 4']).elapsed();
  t.is(r.exitCode, 4);
  t.is(r.signal, null);
  t.is(r.stderr, 'oops\n');
});

// ---------------------------------------------------------------------------------------------
// process trees: an agent is its whole tree, not its PID

/** Running, not a zombie waiting for its new parent (init) to reap it. */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
};

/** PIDs a fixture script wrote to `file`, one per line (its children report themselves so). */
async function pidsIn(file: string): Promise<number[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kill (by the PIDs they wrote) whatever a fixture left behind, so a failing test leaves nothing. */
function reap(t: ExecutionContext, file: string): void {
  t.teardown(async () => {
    for (const pid of await pidsIn(file)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
}

test('group: the deadline ends the whole tree, even a child that ignores SIGTERM and holds the pipes', async (t) => {
  t.timeout(10_000);
  const pids = join(tmp, 'tree-deadline.pids');
  reap(t, pids);
  // the reproduction of the defect: a wrapper whose child inherited its stdout/stderr and outlives it
  const script = `(trap '' TERM; echo $(exec sh -c 'echo $PPID') >> ${pids}; exec sleep 30) & echo $$ >> ${pids}; exec sleep 60`;
  const p = start(t, 'sh', ['-c', script], { group: true, timeoutMs: 300, killGraceMs: 150 });
  const { r, ms } = await p.elapsed();
  t.true(r.timedOut);
  t.true(ms < 4000, `the try took ${ms} ms against a 300 ms deadline (the child sleeps 30 s)`);
  const written = await pidsIn(pids);
  t.is(written.length, 2);
  t.deepEqual(written.filter(alive), [], 'no process of the tree survives');
});

test('group: a leader that exits while its child still runs ends the child and names it as left behind', async (t) => {
  t.timeout(10_000);
  const pids = join(tmp, 'tree-leftover.pids');
  reap(t, pids);
  const script = `sleep 30 & echo $! >> ${pids}; echo '{"ok":true}'`;
  const { r, ms } = await start(t, 'sh', ['-c', script], { group: true, timeoutMs: 5000 }).elapsed();
  t.is(r.exitCode, 0);
  t.false(r.timedOut);
  t.is(r.stdout, '{"ok":true}\n');
  t.deepEqual(r.leftover, ['sleep']);
  t.true(ms < 4000, `did not wait for the child (30 s) or the deadline (5 s): ${ms} ms`);
  t.deepEqual((await pidsIn(pids)).filter(alive), []);
});

test('group: a process that left the group but holds the pipes cannot keep the result waiting', async (t) => {
  t.timeout(10_000);
  const pids = join(tmp, 'tree-escaped.pids');
  reap(t, pids);
  // a double-forking daemon: a new session (out of the group), still holding stdout and stderr
  const script = `setsid sh -c 'echo $$ >> ${pids}; exec sleep 30' & sleep 0.1; echo done`;
  const { r, ms } = await start(t, 'sh', ['-c', script], { group: true, timeoutMs: 5000, pipeGraceMs: 200 }).elapsed();
  t.is(r.exitCode, 0);
  t.true(r.pipesHeld);
  t.is(r.stdout, 'done\n');
  t.true(ms < 4000, `did not wait for the daemon (30 s) or the deadline (5 s): ${ms} ms`);
});

test('group: a tree that ends by itself leaves nothing to report', async (t) => {
  const { r } = await start(t, 'sh', ['-c', 'sleep 0.05 & wait; echo fine'], { group: true }).elapsed();
  t.deepEqual([r.exitCode, r.stdout, r.leftover, r.pipesHeld], [0, 'fine\n', [], false]);
});

test('stop() ends a running tree early: SIGTERM to the group, SIGKILL after the grace', async (t) => {
  t.timeout(10_000);
  const p = startProc('sh', ['-c', `(trap '' TERM; exec sleep 30) & exec sleep 30`], { group: true, killGraceMs: 100 });
  t.teardown(() => p.stop());
  await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  await p.stop();
  const r = await p.done;
  t.true(performance.now() - t0 < 1500);
  t.is(r.signal, 'SIGTERM');
  t.false(r.timedOut);
});

test('the pipe grace never drops what the process wrote before it ended, even when reading lags behind', async (t) => {
  // 400 kB take several reads after the exit; a 1 ms grace expires long before they are done
  const { r } = await start(t, 'sh', ['-c', 'head -c 400000 /dev/zero | tr "\\\\0" x; echo; echo "{\\"ok\\":true}"'], { group: true, pipeGraceMs: 1 }).elapsed();
  t.false(r.pipesHeld);
  t.is(r.stdout.length, 400_000 + 1 + 12);
  t.true(r.stdout.endsWith('\n{"ok":true}\n'));
});

// Evidence files obey a cap as the verdict's buffer does: a 10 MB agent leaves the head and the tail,
// and the file says it was cut (issue 11).
// serial: 20 MB of output must not slow the other tests of this file down
test.serial('evidence files keep head and tail of a flood and say that they were cut', async (t) => {
  const script = "const a='HEAD'+'a'.repeat(5e6); process.stdout.write(a); process.stderr.write(a); process.stdout.write('b'.repeat(5e6)+'TAIL'); process.stderr.write('b'.repeat(5e6)+'TAIL');";
  const stdoutFile = join(tmp, 'flood.stdout.log');
  const stderrFile = join(tmp, 'flood.stderr.log');
  const { r } = await start(t, process.execPath, ['-e', script], { stdoutFile, stderrFile }).elapsed();
  t.is(r.exitCode, 0);
  for (const f of [stdoutFile, stderrFile]) {
    const text = readFileSync(f, 'utf8');
    t.true(text.length <= 1_100_000, `${f}: ${text.length} characters`);
    t.true(text.startsWith('HEAD'), 'the head is kept');
    t.true(text.endsWith('TAIL'), 'the tail is kept');
    t.regex(text, /\[natmatrix: \d+ characters cut here/);
  }
});

test('evidence files under the cap are written whole, with no mark', async (t) => {
  const stdoutFile = join(tmp, 'small.stdout.log');
  const { r } = await start(t, process.execPath, ['-e', "process.stdout.write('x'.repeat(300000)+'END')"], { stdoutFile }).elapsed();
  t.is(r.exitCode, 0);
  const text = readFileSync(stdoutFile, 'utf8');
  t.is(text, 'x'.repeat(300000) + 'END');
});

// A confined agent's deadline is its own: it counts from the launcher's "started" line, not from the spawn.
test('deadlineFrom: the deadline counts from the marker on stderr, with an allowance until it comes', async (t) => {
  const marked = await start(t, 'sh', ['-c', 'sleep 0.5; echo "[started]" >&2; exec sleep 30'], { timeoutMs: 300, deadlineFrom: { marker: '[started]', allowanceMs: 5000 } }).elapsed();
  t.true(marked.r.timedOut);
  t.true(marked.ms >= 750, `re-armed at the marker: ended ${marked.ms} ms after the spawn, not 300 ms`);
  t.true(marked.ms < 4000, `re-armed at the marker, not left at the allowance: ${marked.ms} ms`);
  const silent = await start(t, 'sh', ['-c', 'exec sleep 30'], { timeoutMs: 300, deadlineFrom: { marker: '[started]', allowanceMs: 600 } }).elapsed();
  t.true(silent.r.timedOut);
  t.true(silent.ms >= 850, `no marker: the deadline plus the allowance, ${silent.ms} ms`);
});
