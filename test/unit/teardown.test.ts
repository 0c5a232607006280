// Teardown: the run's undo stack.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Teardown } from '../../harness/teardown.ts';

test('undos run newest first, exactly once, even when unwind() is called twice at once', async (t) => {
  const td = new Teardown();
  const ran: string[] = [];
  for (const name of ['ns', 'veth', 'nft', 'agent']) {
    td.push(name, async () => {
      await sleep(5);
      ran.push(name);
    });
  }
  t.is(td.size, 4);
  const first = td.unwind();
  const second = td.unwind();
  t.is(first, second, 'the same promise');
  const [e1, e2] = await Promise.all([first, second]);
  t.deepEqual(ran, ['agent', 'nft', 'veth', 'ns']);
  t.deepEqual(e1, []);
  t.is(e1, e2);
  t.is(td.size, 0);
  // and a later unwind runs nothing again
  t.deepEqual(await td.unwind(), []);
  t.deepEqual(ran, ['agent', 'nft', 'veth', 'ns']);
});

test('undos run one at a time: the next starts after the previous settled', async (t) => {
  const td = new Teardown();
  let running = 0;
  let most = 0;
  for (let i = 0; i < 3; i++) {
    td.push(`s${i}`, async () => {
      running++;
      most = Math.max(most, running);
      await sleep(5);
      running--;
    });
  }
  await td.unwind();
  t.is(most, 1);
});

test('a failing undo does not stop the others and is reported with its cause', async (t) => {
  const td = new Teardown();
  const ran: string[] = [];
  const boom = new Error('netns busy');
  td.push('first', () => void ran.push('first'));
  td.push('delete namespaces', () => {
    ran.push('throws');
    throw boom;
  });
  td.push('async reject', async () => {
    ran.push('rejects');
    await sleep(1);
    throw new Error('nft gone');
  });
  td.push('last', () => void ran.push('last'));
  const errors = await td.unwind();
  t.deepEqual(ran, ['last', 'rejects', 'throws', 'first']);
  t.is(errors.length, 2);
  t.is(errors[0]!.message, 'teardown: async reject failed');
  t.is((errors[0]!.cause as Error).message, 'nft gone');
  t.is(errors[1]!.message, 'teardown: delete namespaces failed');
  t.is(errors[1]!.cause, boom);
});

test('release drops a step without running it', async (t) => {
  const td = new Teardown();
  const ran: string[] = [];
  td.push('a', () => void ran.push('a'));
  const release = td.push('b', () => void ran.push('b'));
  td.push('c', () => void ran.push('c'));
  release();
  t.is(td.size, 2);
  release(); // twice is harmless and drops nothing else
  t.is(td.size, 2);
  await td.unwind();
  t.deepEqual(ran, ['c', 'a']);
});

test('a step pushed after unwinding finished runs at once', async (t) => {
  const td = new Teardown();
  await td.unwind();
  let ran = 0;
  const release = td.push('late', () => {
    ran++;
  });
  t.is(td.size, 0, 'not kept on the stack');
  await sleep(0);
  t.is(ran, 1);
  release(); // a no-op now
  await td.unwind();
  t.is(ran, 1, 'not run a second time');
});

test('a late step that fails does not produce an unhandled rejection', async (t) => {
  const td = new Teardown();
  await td.unwind();
  let ran = false;
  td.push('late failure', async () => {
    ran = true;
    throw new Error('late');
  });
  await sleep(5);
  t.true(ran);
});

test('a step pushed while unwinding is still undone', async (t) => {
  const td = new Teardown();
  const ran: string[] = [];
  td.push('outer', async () => {
    ran.push('outer');
  });
  td.push('spawner', async () => {
    await sleep(2);
    td.push('pushed during unwind', () => void ran.push('pushed during unwind'));
    ran.push('spawner');
  });
  const errors = await td.unwind();
  t.deepEqual(errors, []);
  t.true(ran.includes('pushed during unwind'));
  t.is(ran.length, 3);
  t.is(td.size, 0);
});

test('closing flips when unwinding starts', async (t) => {
  const td = new Teardown();
  let release!: () => void;
  td.push('slow', () => new Promise<void>((r) => (release = r)));
  t.false(td.closing);
  const p = td.unwind();
  t.true(td.closing);
  await new Promise((r) => setImmediate(r)); // the first undo starts on the next microtask
  release();
  await p;
  t.true(td.closing, 'stays closing after unwinding finished');
});

// Regression: `unwind()` once assigned `this.unwinding` only after the async IIFE returned its first promise, and the
// IIFE calls the newest undo synchronously before that. So the first undo (or anything it calls
// synchronously, such as code that checks `closing` before starting new work) still sees
// `closing === false`, and a re-entrant `unwind()` from it would start a second unwinding loop.
test('closing is already true inside the first undo', async (t) => {
  const td = new Teardown();
  const seen: boolean[] = [];
  td.push('older', () => void seen.push(td.closing));
  td.push('newest', () => void seen.push(td.closing));
  await td.unwind();
  t.deepEqual(seen, [true, true]);
});

// Regression (same cause as above): an `unwind()` reached synchronously from the first undo sees no unwinding
// yet and starts a second loop, so the remaining undos run concurrently instead of newest first, one by one.
test('unwind() called from inside the first undo does not start a second loop', async (t) => {
  const td = new Teardown();
  const order: string[] = [];
  const slow = (name: string) => async () => {
    order.push(`${name} start`);
    await sleep(5);
    order.push(`${name} end`);
  };
  td.push('s1', slow('s1'));
  td.push('s2', slow('s2'));
  td.push('s3', () => {
    order.push('s3');
    void td.unwind();
  });
  await td.unwind();
  await sleep(20);
  t.deepEqual(order, ['s3', 's2 start', 's2 end', 's1 start', 's1 end']);
});

test('await using unwinds at the end of the scope', async (t) => {
  const ran: string[] = [];
  {
    await using td = new Teardown();
    td.push('x', () => void ran.push('x'));
    t.deepEqual(ran, []);
  }
  t.deepEqual(ran, ['x']);
});
