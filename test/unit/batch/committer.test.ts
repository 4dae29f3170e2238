import { describe, expect, it } from 'vitest';
import { BatchCommitter, type CommitTarget } from '../../../src/batch/committer.ts';
import { type Deferred, deferred, flush, watch } from '../../support/async.ts';

const OFFSETS = ['10', '11', '12', '13'];

/** A commit target that records every commit; `hold` makes each commit wait until the test lets it land. */
class FakeTarget implements CommitTarget {
  readonly commits: string[] = [];
  readonly pending: Deferred[] = [];
  allowed = true;
  hold = false;
  failNext = 0;
  inFlight = 0;
  maxInFlight = 0;

  canCommit(): boolean {
    return this.allowed;
  }

  async commit(offset: string): Promise<void> {
    this.commits.push(offset);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) {
        const landed = deferred();
        this.pending.push(landed);
        await landed.promise;
      }
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('commit failed');
      }
    } finally {
      this.inFlight--;
    }
  }

  /** Lets the oldest held commit land. */
  land(): void {
    const next = this.pending.shift();
    if (next === undefined) throw new Error('no commit is in flight');
    next.resolve();
  }
}

/** A clock the test moves by hand. */
function clock(): { now: () => number; set: (ms: number) => void } {
  let t = 0;
  return { now: () => t, set: (ms) => (t = ms) };
}

describe('BatchCommitter', () => {
  it.each([
    { order: [0, 1, 2, 3], commits: ['10', '11', '12', '13'] },
    { order: [3, 2, 1, 0], commits: ['13'] },
    { order: [1, 0, 3, 2], commits: ['11', '13'] },
    { order: [0, 2, 3, 1], commits: ['10', '13'] },
    { order: [2, 0, 1, 3], commits: ['10', '12', '13'] },
  ])('commits only over the contiguous finished prefix (finish order $order)', async ({ order, commits }) => {
    const target = new FakeTarget();
    const committer = new BatchCommitter(OFFSETS, undefined, 0, target);
    for (const index of order) {
      committer.complete(index);
      await flush();
    }
    await committer.flush();
    expect(target.commits).toEqual(commits);
  });

  it('reports the watermark as the last offset of the finished prefix, undefined before any', () => {
    const committer = new BatchCommitter(OFFSETS, undefined, Number.POSITIVE_INFINITY, new FakeTarget());
    expect(committer.watermark).toBeUndefined();
    committer.complete(1);
    expect(committer.watermark).toBeUndefined();
    committer.complete(0);
    expect(committer.watermark).toBe('11');
  });

  it('never sends two commits at once, and each sends the watermark as it is when its turn comes', async () => {
    const target = new FakeTarget();
    target.hold = true;
    const committer = new BatchCommitter(OFFSETS, undefined, 0, target);
    committer.complete(0);
    await flush();
    expect(target.commits).toEqual(['10']);

    committer.complete(1);
    committer.complete(2);
    await flush();
    expect(target.commits).toEqual(['10']);

    target.land();
    await flush();
    expect(target.commits).toEqual(['10', '12']);
    target.land();
    await flush();
    expect(target.commits).toEqual(['10', '12']);
    expect(target.maxInFlight).toBe(1);
  });

  it('never commits backwards, however the finishes interleave with slow commits', async () => {
    const target = new FakeTarget();
    target.hold = true;
    const committer = new BatchCommitter(OFFSETS, undefined, 0, target);
    for (const index of [1, 0, 3, 2]) {
      committer.complete(index);
      await flush();
      while (target.pending.length > 0) {
        target.land();
        await flush();
      }
    }
    const flushed = committer.flush();
    await flush();
    while (target.pending.length > 0) target.land();
    await flushed;
    const asNumbers = target.commits.map(Number);
    expect(asNumbers).toEqual([...asNumbers].sort((a, b) => a - b));
    expect(new Set(target.commits).size).toBe(target.commits.length);
    expect(target.commits.at(-1)).toBe('13');
  });

  it('sends a commit at most once per interval while the batch runs (injected clock)', async () => {
    const time = clock();
    time.set(5_000);
    const target = new FakeTarget();
    const committer = new BatchCommitter(OFFSETS, undefined, 1_000, target, time.now);

    time.set(5_999);
    committer.complete(0);
    await flush();
    expect(target.commits).toEqual([]);

    time.set(6_000);
    committer.complete(1);
    await flush();
    expect(target.commits).toEqual(['11']);

    time.set(6_999);
    committer.complete(2);
    await flush();
    expect(target.commits).toEqual(['11']);

    time.set(7_000);
    committer.complete(3);
    await flush();
    expect(target.commits).toEqual(['11', '13']);
  });

  it('sends the last watermark on flush() and resolves only once it landed', async () => {
    const target = new FakeTarget();
    target.hold = true;
    const committer = new BatchCommitter(OFFSETS, undefined, Number.POSITIVE_INFINITY, target);
    for (const index of [0, 1, 2]) committer.complete(index);
    await flush();
    expect(target.commits).toEqual([]);

    const flushed = watch(committer.flush());
    await flush();
    expect(target.commits).toEqual(['12']);
    expect(flushed.settled).toBe(false);

    target.land();
    await flush();
    expect(flushed.settled).toBe(true);
  });

  it('commits nothing on flush() when no record finished', async () => {
    const target = new FakeTarget();
    const committer = new BatchCommitter(OFFSETS, '14', 0, target);
    committer.complete(2);
    await committer.flush();
    expect(target.commits).toEqual([]);
  });

  it("commits the batch's last offset (past a trailing control record) once every record is done, and not before", async () => {
    const target = new FakeTarget();
    const committer = new BatchCommitter(['10', '11'], '12', 0, target);
    committer.complete(0);
    await flush();
    expect(committer.watermark).toBe('10');
    expect(target.commits).toEqual(['10']);

    committer.complete(1);
    await committer.flush();
    expect(committer.watermark).toBe('12');
    expect(target.commits).toEqual(['10', '12']);
  });

  it("commits the last record's offset once all are done when the batch has no last offset", async () => {
    const target = new FakeTarget();
    const committer = new BatchCommitter(['10', '11'], undefined, Number.POSITIVE_INFINITY, target);
    committer.complete(0);
    committer.complete(1);
    await committer.flush();
    expect(target.commits).toEqual(['11']);
  });

  it('commits nothing while canCommit() is false, and the current watermark once it is true again', async () => {
    const target = new FakeTarget();
    target.allowed = false;
    const committer = new BatchCommitter(OFFSETS, undefined, 0, target);
    committer.complete(0);
    committer.complete(1);
    await committer.flush();
    expect(target.commits).toEqual([]);

    target.allowed = true;
    await committer.flush();
    expect(target.commits).toEqual(['11']);
  });

  it('does not reject flush() when a commit fails, and the next commit carries the progress', async () => {
    const target = new FakeTarget();
    target.failNext = 1;
    const committer = new BatchCommitter(OFFSETS, undefined, Number.POSITIVE_INFINITY, target);
    committer.complete(0);
    await expect(committer.flush()).resolves.toBeUndefined();
    expect(target.commits).toEqual(['10']);

    committer.complete(1);
    await committer.flush();
    expect(target.commits).toEqual(['10', '11']);
  });

  it('sends the same offset again after a failed commit of it', async () => {
    const target = new FakeTarget();
    target.failNext = 1;
    const committer = new BatchCommitter(OFFSETS, undefined, Number.POSITIVE_INFINITY, target);
    committer.complete(0);
    await committer.flush();
    await committer.flush();
    expect(target.commits).toEqual(['10', '10']);
  });

  it('does not commit the same offset twice once it landed', async () => {
    const target = new FakeTarget();
    const committer = new BatchCommitter(OFFSETS, undefined, 0, target);
    committer.complete(0);
    await flush();
    committer.complete(2);
    await flush();
    await committer.flush();
    await committer.flush();
    expect(target.commits).toEqual(['10']);
  });
});

describe('BatchCommitter over appended batches (a streaming lane)', () => {
  it('commits across a batch boundary only when the earlier batch is done, ending on the last batch offset', async () => {
    const target = new FakeTarget();
    const committer = new BatchCommitter([], undefined, 0, target);
    const a = committer.append(['10', '11'], '11');
    const b = committer.append(['12', '14'], '15');
    expect([a, b]).toEqual([0, 2]);
    committer.complete(b);
    committer.complete(b + 1);
    await committer.flush();
    expect(target.commits).toEqual([]);
    expect(committer.firstUnfinished).toBe('10');
    committer.complete(a + 1);
    committer.complete(a);
    await committer.flush();
    expect(target.commits).toEqual(['15']);
    expect(committer.firstUnfinished).toBeUndefined();
  });
});
