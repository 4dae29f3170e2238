import { describe, expect, it } from 'vitest';
import { ByteBudget, type Charge, InflightWindow } from '../../../src/batch/window.ts';
import { deferred, flush, until, watch } from '../../support/async.ts';

/** A window whose byte budgets never bind: only the count limit matters. */
const UNLIMITED = Number.MAX_SAFE_INTEGER;

describe('ByteBudget', () => {
  it('admits at once while the bytes fit, up to and including the limit', async () => {
    const budget = new ByteBudget(10);
    await budget.take(4);
    await budget.take(6);
    expect(budget.used).toBe(10);
  });

  it('makes a take wait when the bytes would pass the limit by one', async () => {
    const budget = new ByteBudget(10);
    await budget.take(4);
    const over = watch(budget.take(7));
    await flush();
    expect(over.settled).toBe(false);
    expect(budget.used).toBe(4);
  });

  it('admits in arrival order: a small take that would fit waits behind a big one queued first', async () => {
    const budget = new ByteBudget(10);
    await budget.take(6);
    const admitted: string[] = [];
    const big = budget.take(6).then(() => admitted.push('big'));
    const small = budget.take(1).then(() => admitted.push('small'));
    await flush();
    expect(admitted).toEqual([]);
    expect(budget.used).toBe(6);

    budget.give(6);
    await Promise.all([big, small]);
    expect(admitted).toEqual(['big', 'small']);
    expect(budget.used).toBe(7);
  });

  it('admits waiters in order as bytes come back, only as many as fit', async () => {
    const budget = new ByteBudget(10);
    await budget.take(10);
    const admitted: string[] = [];
    const a = budget.take(4).then(() => admitted.push('a'));
    const b = budget.take(4).then(() => admitted.push('b'));
    const c = watch(budget.take(4).then(() => admitted.push('c')));

    budget.give(10);
    await Promise.all([a, b]);
    await flush();
    expect(admitted).toEqual(['a', 'b']);
    expect(c.settled).toBe(false);
    expect(budget.used).toBe(8);

    budget.give(4);
    await until(() => c.settled, 'the third waiter is admitted');
    expect(admitted).toEqual(['a', 'b', 'c']);
    expect(budget.used).toBe(8);
  });

  it('admits a record larger than the budget alone when nothing is held', async () => {
    const budget = new ByteBudget(10);
    await budget.take(25);
    expect(budget.used).toBe(25);

    const next = watch(budget.take(1));
    await flush();
    expect(next.settled).toBe(false);
    budget.give(25);
    await flush();
    expect(next.settled).toBe(true);
    expect(budget.used).toBe(1);
  });

  it('makes a record larger than the budget wait until every held byte is back', async () => {
    const budget = new ByteBudget(10);
    await budget.take(3);
    await budget.take(2);
    const huge = watch(budget.take(25));
    budget.give(3);
    await flush();
    expect(huge.settled).toBe(false);
    budget.give(2);
    await flush();
    expect(huge.settled).toBe(true);
    expect(budget.used).toBe(25);
  });

  it('grows a charge without waiting on give() with a negative number, even past the limit', async () => {
    const budget = new ByteBudget(10);
    await budget.take(8);
    budget.give(-5);
    expect(budget.used).toBe(13);
  });

  it('counts a grown charge against later takes: a take that fit before the growth waits', async () => {
    const budget = new ByteBudget(10);
    await budget.take(5);
    await budget.take(3);
    budget.give(-3);
    const waiter = watch(budget.take(2));
    await flush();
    expect(waiter.settled).toBe(false);
    expect(budget.used).toBe(11);

    budget.give(3);
    await flush();
    expect(waiter.settled).toBe(true);
    expect(budget.used).toBe(10);
  });
});

describe('InflightWindow', () => {
  /** Admits a record and tracks a task for it that ends (and releases its charge) when the returned deferred settles. */
  async function run(window: InflightWindow, bytes = 1) {
    const charge = await window.admit(bytes);
    const task = deferred();
    window.track(task.promise.finally(() => charge.release()));
    return task;
  }

  it('admits up to the count limit at once and makes the next record wait for a free slot', async () => {
    const window = new InflightWindow(2, UNLIMITED, new ByteBudget(UNLIMITED));
    const first = await run(window);
    await run(window);
    expect(window.size).toBe(2);

    const third = watch(window.admit(1));
    await flush();
    expect(third.settled).toBe(false);

    first.resolve();
    await flush();
    expect(third.settled).toBe(true);
    expect(window.size).toBe(1);
  });

  it('holds records within the batch byte budget', async () => {
    const process = new ByteBudget(UNLIMITED);
    const window = new InflightWindow(10, 10, process);
    const first = await window.admit(6);
    const second = watch(window.admit(6));
    await flush();
    expect(second.settled).toBe(false);
    expect(process.used).toBe(6);

    first.release();
    await flush();
    expect(second.settled).toBe(true);
    expect(process.used).toBe(6);
  });

  it('shares the process budget across the windows of two batches', async () => {
    const process = new ByteBudget(10);
    const a = new InflightWindow(10, UNLIMITED, process);
    const b = new InflightWindow(10, UNLIMITED, process);
    const held = await a.admit(6);
    const waiting = watch(b.admit(6));
    await flush();
    expect(waiting.settled).toBe(false);

    held.release();
    await flush();
    expect(waiting.settled).toBe(true);
    expect(process.used).toBe(6);
  });

  it('lets a waiter in when a charge shrinks (the decoded object was dropped)', async () => {
    const process = new ByteBudget(UNLIMITED);
    const window = new InflightWindow(10, 10, process);
    const decoding = await window.admit(8);
    const waiting = watch(window.admit(5));
    await flush();
    expect(waiting.settled).toBe(false);

    decoding.resize(3);
    await flush();
    expect(waiting.settled).toBe(true);
    expect(process.used).toBe(8);
  });

  it('lets another batch in when a charge shrinks in the process budget', async () => {
    const process = new ByteBudget(10);
    const a = new InflightWindow(10, UNLIMITED, process);
    const b = new InflightWindow(10, UNLIMITED, process);
    const decoding = await a.admit(8);
    const waiting = watch(b.admit(5));
    decoding.resize(5);
    await flush();
    expect(waiting.settled).toBe(true);
    expect(process.used).toBe(10);
  });

  it('charges a grown record its new size in both budgets', async () => {
    const process = new ByteBudget(UNLIMITED);
    const window = new InflightWindow(10, 10, process);
    const charge = await window.admit(4);
    charge.resize(9);
    expect(process.used).toBe(9);
    const waiting = watch(window.admit(2));
    await flush();
    expect(waiting.settled).toBe(false);
  });

  it('gives back what the charge holds after resizing, not what it was admitted with', async () => {
    const process = new ByteBudget(UNLIMITED);
    const window = new InflightWindow(10, UNLIMITED, process);
    const charge = await window.admit(8);
    charge.resize(3);
    charge.release();
    expect(process.used).toBe(0);
  });

  it('gives the bytes back once however often a charge is released, and ignores a resize after it', async () => {
    const process = new ByteBudget(UNLIMITED);
    const window = new InflightWindow(10, UNLIMITED, process);
    const released: Charge = await window.admit(4);
    await window.admit(5);
    released.release();
    released.release();
    expect(process.used).toBe(5);
    released.resize(1);
    expect(process.used).toBe(5);
  });

  it('drains only once every tracked task has settled', async () => {
    const window = new InflightWindow(10, UNLIMITED, new ByteBudget(UNLIMITED));
    const first = await run(window);
    const second = await run(window);
    const drained = watch(window.drain());

    first.resolve();
    await flush();
    expect(drained.settled).toBe(false);
    second.resolve();
    await flush();
    expect(drained.settled).toBe(true);
    expect(window.size).toBe(0);
  });

  it('drains at once when nothing is tracked', async () => {
    const window = new InflightWindow(1, UNLIMITED, new ByteBudget(UNLIMITED));
    await expect(window.drain()).resolves.toBeUndefined();
  });

  it('frees the slot of a rejected task, and drains without rejecting', async () => {
    const window = new InflightWindow(1, UNLIMITED, new ByteBudget(UNLIMITED));
    const failing = await run(window);
    const next = watch(window.admit(1));
    await flush();
    expect(next.settled).toBe(false);

    failing.reject(new Error('upload failed'));
    await flush();
    expect(next.settled).toBe(true);
    expect(next.error).toBeUndefined();
    expect(window.size).toBe(0);
    await expect(window.drain()).resolves.toBeUndefined();
  });
});
