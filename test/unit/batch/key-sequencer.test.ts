import { describe, expect, it } from 'vitest';
import { KeySequencer, type KeyTurn } from '../../../src/batch/key-sequencer.ts';
import { flush, watch } from '../../support/async.ts';

/** The turns of `n` records of one batch, in offset order. */
function turns(n: number): KeyTurn[] {
  const sequencer = new KeySequencer();
  return Array.from({ length: n }, () => sequencer.next());
}

function pair(): [KeyTurn, KeyTurn] {
  const [first, second] = turns(2);
  if (first === undefined || second === undefined) throw new Error('two turns expected');
  return [first, second];
}

describe('KeySequencer', () => {
  it('lets the first record of a batch claim its key at once', async () => {
    const [first] = pair();
    await expect(first.claim('a')).resolves.toBe(true);
  });

  it('makes a record wait for an earlier record of the same key to finish', async () => {
    const [first, second] = pair();
    await first.claim('a');
    const claim = watch(second.claim('a'));
    await flush();
    expect(claim.settled).toBe(false);

    first.finish();
    await flush();
    expect(claim.value).toBe(true);
  });

  it('does not make a record wait for an earlier record of another key', async () => {
    const [first, second] = pair();
    await first.claim('a');
    await expect(second.claim('b')).resolves.toBe(true);
  });

  it('does not make an earlier record wait for a later one of the same key', async () => {
    const [first, second] = pair();
    const later = watch(second.claim('a'));
    await expect(first.claim('a')).resolves.toBe(true);
    expect(later.settled).toBe(false);
  });

  it.each([
    { when: 'after claiming the same key', claimed: true },
    { when: 'without ever claiming a key (skipped before decoding)', claimed: false },
  ])('lets later records go once an earlier record is released $when', async ({ claimed }) => {
    const [first, second] = pair();
    if (claimed) await first.claim('a');
    const claim = watch(second.claim('a'));
    await flush();
    expect(claim.settled).toBe(false);

    first.release();
    await flush();
    expect(claim.value).toBe(true);
  });

  it('makes a claim return false when an earlier record of the same key was abandoned', async () => {
    const [first, second] = pair();
    await first.claim('a');
    const claim = watch(second.claim('a'));
    first.abandon();
    await flush();
    expect(claim.value).toBe(false);
  });

  it('lets a record go when an earlier record of another key was abandoned', async () => {
    const [first, second] = pair();
    await first.claim('a');
    first.abandon();
    await expect(second.claim('b')).resolves.toBe(true);
  });

  it('makes every later claim return false once an earlier record abandons without having learned its key', async () => {
    const [first, second, third] = turns(3);
    if (first === undefined || second === undefined || third === undefined) throw new Error('three turns expected');
    const claims = [watch(second.claim('b')), watch(third.claim('c'))];
    await flush();
    // Still decoding, not abandoned: its key may yet turn out to differ, so nobody gives up early.
    expect(claims.map((c) => c.settled)).toEqual([false, false]);

    first.abandon();
    await flush();
    expect(claims.map((c) => c.value)).toEqual([false, false]);
  });

  it('lets later records go when an earlier record finishes without having claimed a key', async () => {
    const [first, second] = pair();
    const claim = watch(second.claim('b'));
    first.finish();
    await flush();
    expect(claim.value).toBe(true);
  });

  it('makes a claim wait for an earlier record still decoding, and go once that one claims another key, before it ends', async () => {
    const [first, second] = pair();
    const claim = watch(second.claim('b'));
    await flush();
    expect(claim.settled).toBe(false);

    const earlier = watch(first.claim('a'));
    await flush();
    expect(earlier.value).toBe(true);
    expect(claim.value).toBe(true);
  });

  it('makes a claim wait for an earlier record still decoding that then claims the same key, until it ends', async () => {
    const [first, second] = pair();
    const claim = watch(second.claim('a'));
    await first.claim('a');
    await flush();
    expect(claim.settled).toBe(false);

    first.finish();
    await flush();
    expect(claim.value).toBe(true);
  });

  it('keeps the first ending of a record: an abandon after finishing does not block later records', async () => {
    const [first, second] = pair();
    await first.claim('a');
    first.finish();
    first.abandon();
    await expect(second.claim('a')).resolves.toBe(true);
  });

  it('keeps the first ending of a record: a finish after abandoning still blocks later records', async () => {
    const [first, second] = pair();
    await first.claim('a');
    first.abandon();
    first.finish();
    await expect(second.claim('a')).resolves.toBe(false);
  });

  describe('a chain of three records of one key', () => {
    function chain(): [KeyTurn, KeyTurn, KeyTurn] {
      const [first, second, third] = turns(3);
      if (first === undefined || second === undefined || third === undefined) throw new Error('three turns expected');
      return [first, second, third];
    }

    it('writes in offset order: each waits for every earlier one', async () => {
      const [first, second, third] = chain();
      await first.claim('a');
      const claims = [watch(second.claim('a')), watch(third.claim('a'))];
      await flush();
      expect(claims.map((c) => c.settled)).toEqual([false, false]);

      first.finish();
      await flush();
      expect(claims.map((c) => c.settled)).toEqual([true, false]);
      expect(claims[0]?.value).toBe(true);

      second.finish();
      await flush();
      expect(claims[1]?.value).toBe(true);
    });

    it('gives up on the third when the second is abandoned after the first finished', async () => {
      const [first, second, third] = chain();
      await first.claim('a');
      const secondClaim = watch(second.claim('a'));
      const thirdClaim = watch(third.claim('a'));
      first.finish();
      await flush();
      expect(secondClaim.value).toBe(true);

      second.abandon();
      await flush();
      expect(thirdClaim.value).toBe(false);
    });

    it('gives up on the second and third when the first is abandoned', async () => {
      const [first, second, third] = chain();
      await first.claim('a');
      const claims = [watch(second.claim('a')), watch(third.claim('a'))];
      first.abandon();
      await flush();
      expect(claims.map((c) => c.value)).toEqual([false, false]);
    });

    it('makes the third wait only for the earlier record of its own key, not for one of another key in between', async () => {
      const [first, second, third] = chain();
      await first.claim('a');
      await expect(second.claim('b')).resolves.toBe(true);
      const claim = watch(third.claim('a'));
      await flush();
      expect(claim.settled).toBe(false);

      first.finish();
      await flush();
      // The second (key b) is still writing.
      expect(claim.value).toBe(true);
    });
  });
});

describe('KeySequencer over a long run (a streaming lane)', () => {
  it('remembers only records in flight: keys of finished and released records are forgotten', async () => {
    const sequencer = new KeySequencer();
    for (let i = 0; i < 10_000; i++) {
      const turn = sequencer.next();
      expect(await turn.claim(`k${i % 50}`)).toBe(true);
      if (i % 2 === 0) turn.finish();
      else turn.release();
    }
    expect(sequencer.rememberedKeys).toBe(0);
    const held = sequencer.next();
    await held.claim('k1');
    expect(sequencer.rememberedKeys).toBe(1);
  });

  it('still orders a record after a forgotten one of the same key that is followed by one in flight', async () => {
    const sequencer = new KeySequencer();
    const a = sequencer.next();
    await a.claim('k');
    a.finish();
    const b = sequencer.next();
    await b.claim('k');
    const c = sequencer.next();
    const claimed = watch(c.claim('k'));
    await flush();
    expect(claimed.settled).toBe(false);
    b.finish();
    await flush();
    expect(claimed.value).toBe(true);
  });

  it('keeps an abandoned record, so a later same-key record still gives up', async () => {
    const sequencer = new KeySequencer();
    const a = sequencer.next();
    await a.claim('k');
    a.abandon();
    expect(await sequencer.next().claim('k')).toBe(false);
  });
});
