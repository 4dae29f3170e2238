import { describe, expect, it } from 'vitest';
import { PartitionStalls } from '../../../src/batch/stalls.ts';

const SETTINGS = { retryInitialMs: 100, retryMaxMs: 1_000 };

/** Stalls with a fixed jitter draw and a clock the test moves by hand. */
function stalls(random = 1, settings = SETTINGS) {
  let t = 0;
  const tracker = new PartitionStalls(
    settings,
    () => random,
    () => t,
  );
  return { tracker, at: (ms: number) => (t = ms) };
}

function delays(tracker: PartitionStalls, partition: number, n: number): number[] {
  return Array.from({ length: n }, () => tracker.backoff(partition).delayMs);
}

describe('PartitionStalls', () => {
  describe('backoff', () => {
    it('grows exponentially from the initial delay up to the cap across calls', () => {
      const { tracker } = stalls(1);
      tracker.stall(0, '10');
      expect(delays(tracker, 0, 6)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    });

    it('numbers the attempts from 0', () => {
      const { tracker } = stalls();
      expect([tracker.backoff(0).attempt, tracker.backoff(0).attempt, tracker.backoff(0).attempt]).toEqual([0, 1, 2]);
    });

    it.each([
      { random: 0.5, attempt: 0, delayMs: 50 },
      { random: 0.5, attempt: 3, delayMs: 400 },
      { random: 0.123, attempt: 0, delayMs: 12 },
      { random: 0.127, attempt: 0, delayMs: 13 },
      { random: 0.999, attempt: 5, delayMs: 999 },
      { random: 0.004, attempt: 0, delayMs: 1 },
      { random: 0, attempt: 0, delayMs: 1 },
    ])('draws a full-jitter delay, rounded and at least 1 ms (random $random, attempt $attempt → $delayMs ms)', ({ random, attempt, delayMs }) => {
      const { tracker } = stalls(random);
      delays(tracker, 0, attempt);
      expect(tracker.backoff(0)).toEqual({ attempt, delayMs });
    });

    it('keeps the exponent finite on a very long outage', () => {
      const { tracker } = stalls(1, { retryInitialMs: 1, retryMaxMs: Number.MAX_SAFE_INTEGER });
      expect(delays(tracker, 0, 40).at(-1)).toBe(2 ** 30);
    });

    it('counts attempts per partition', () => {
      const { tracker } = stalls();
      delays(tracker, 0, 3);
      expect(tracker.backoff(1)).toEqual({ attempt: 0, delayMs: 100 });
    });

    it('starts again from the initial delay once the stalled record finishes', () => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      delays(tracker, 0, 3);
      tracker.finished(0, '10');
      tracker.stall(0, '20');
      expect(tracker.backoff(0)).toEqual({ attempt: 0, delayMs: 100 });
    });

    it('keeps growing when a record past the stalled one finishes (it was in flight when the stall began)', () => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      delays(tracker, 0, 3);
      tracker.finished(0, '11');
      expect(tracker.isStalled(0)).toBe(true);
      expect(tracker.backoff(0)).toEqual({ attempt: 3, delayMs: 800 });
    });

    it.each([
      { from: '10', stalled: true },
      { from: '11', stalled: false },
      { from: '9', stalled: true },
    ])('a batch fetched from $from of a partition stalled at 10 leaves it stalled: $stalled (the record is gone past it)', ({ from, stalled }) => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      tracker.fetchedFrom(0, from);
      expect(tracker.isStalled(0)).toBe(stalled);
    });

    it('keeps growing when only a record below the stalled one finishes', () => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      delays(tracker, 0, 3);
      tracker.finished(0, '9');
      expect(tracker.backoff(0)).toEqual({ attempt: 3, delayMs: 800 });
    });
  });

  describe('stall state', () => {
    it.each([
      { finished: '9', stalled: false },
      { finished: '10', stalled: true },
      { finished: '8', stalled: true },
    ])('is stalled after a finish at $finished of a partition stalled at 9: $stalled', ({ finished, stalled }) => {
      const { tracker } = stalls();
      tracker.stall(0, '9');
      tracker.finished(0, finished);
      expect(tracker.isStalled(0)).toBe(stalled);
    });

    it('is not stalled before any failure', () => {
      const { tracker } = stalls();
      tracker.finished(0, '5');
      expect(tracker.isStalled(0)).toBe(false);
      expect(tracker.stalled).toBe(0);
    });

    it('counts stalled partitions, each once', () => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      tracker.stall(1, '7');
      tracker.stall(0, '12');
      expect(tracker.stalled).toBe(2);
      tracker.finished(1, '7');
      expect(tracker.stalled).toBe(1);
      expect([tracker.isStalled(0), tracker.isStalled(1)]).toEqual([true, false]);
    });

    it('keeps the lowest stalled offset when a higher one stalls later', () => {
      const { tracker } = stalls();
      tracker.stall(0, '9');
      tracker.stall(0, '10');
      tracker.finished(0, '9');
      expect(tracker.isStalled(0)).toBe(false);
    });

    it('moves the stall down when a lower offset stalls later', () => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      tracker.stall(0, '9');
      tracker.finished(0, '9');
      expect(tracker.isStalled(0)).toBe(false);
    });
  });

  describe('records finished ahead of the stall', () => {
    it('remembers them per partition', () => {
      const { tracker } = stalls();
      tracker.rememberFinishedAhead(0, ['12', '14']);
      expect([tracker.alreadyFinished(0, '12'), tracker.alreadyFinished(0, '13'), tracker.alreadyFinished(0, '14')]).toEqual([true, false, true]);
      expect(tracker.alreadyFinished(1, '12')).toBe(false);
    });

    it('forgets those at or below a committed offset (numerically, not as text) and keeps those above', () => {
      const { tracker } = stalls();
      tracker.rememberFinishedAhead(0, ['12', '14', '100']);
      tracker.committed(0, '14');
      expect([tracker.alreadyFinished(0, '12'), tracker.alreadyFinished(0, '14'), tracker.alreadyFinished(0, '100')]).toEqual([false, false, true]);
    });

    it('ignores a commit of another partition', () => {
      const { tracker } = stalls();
      tracker.rememberFinishedAhead(0, ['12']);
      tracker.committed(1, '20');
      expect(tracker.alreadyFinished(0, '12')).toBe(true);
    });

    it('does not start tracking a partition on a commit alone', () => {
      const { tracker } = stalls();
      tracker.committed(3, '20');
      expect([...tracker.secondsSinceProgress().keys()]).toEqual([]);
    });
  });

  describe('ownership', () => {
    it('forgets partitions this member no longer owns and keeps the state of those it still owns', () => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      tracker.stall(1, '10');
      tracker.rememberFinishedAhead(0, ['12']);
      tracker.rememberFinishedAhead(1, ['12']);
      delays(tracker, 1, 2);

      tracker.assigned([1, 2]);
      expect(tracker.stalled).toBe(1);
      expect([tracker.isStalled(0), tracker.isStalled(1)]).toEqual([false, true]);
      expect([tracker.alreadyFinished(0, '12'), tracker.alreadyFinished(1, '12')]).toEqual([false, true]);
      expect(tracker.backoff(1).attempt).toBe(2);
      expect(tracker.backoff(0).attempt).toBe(0);
    });

    it('starts tracking the progress of newly assigned partitions', () => {
      const { tracker } = stalls();
      tracker.assigned([3, 1]);
      expect([...tracker.secondsSinceProgress().keys()].sort()).toEqual([1, 3]);
    });

    it('forgets everything when every partition is revoked', () => {
      const { tracker } = stalls();
      tracker.stall(0, '10');
      tracker.rememberFinishedAhead(0, ['12']);
      delays(tracker, 0, 2);

      tracker.revokedAll();
      expect(tracker.stalled).toBe(0);
      expect(tracker.isStalled(0)).toBe(false);
      expect(tracker.alreadyFinished(0, '12')).toBe(false);
      expect(tracker.secondsSinceProgress().size).toBe(0);
      expect(tracker.backoff(0).attempt).toBe(0);
    });
  });

  it('reports seconds since each partition last finished a record, or was assigned (injected clock)', () => {
    const { tracker, at } = stalls();
    at(1_000);
    tracker.assigned([0, 1]);
    at(4_000);
    tracker.finished(0, '5');
    at(6_500);
    expect(tracker.secondsSinceProgress()).toEqual(
      new Map([
        [0, 2.5],
        [1, 5.5],
      ]),
    );
  });

  it('does not count a stall as progress', () => {
    const { tracker, at } = stalls();
    at(1_000);
    tracker.assigned([0]);
    at(3_000);
    tracker.stall(0, '5');
    at(4_000);
    expect(tracker.secondsSinceProgress().get(0)).toBe(3);
  });
});
