import { describe, expect, it } from 'vitest';
import { PartitionLane } from '../../../src/batch/lane.ts';
import { ByteBudget } from '../../../src/batch/window.ts';
import { deferred, FakeControl, record, until } from '../../support/pipeline-fakes.ts';

describe('PartitionLane', () => {
  it('commits once the last records settle, even when they settle in the same tick (a commit interval far away)', async () => {
    const control = new FakeControl();
    const gate = deferred();
    const lane = new PartitionLane(0, control, { inflightPerPartition: 8, maxInflightBytes: 1 << 20, commitIntervalMs: 60_000 }, new ByteBudget(1 << 20), {
      alreadyFinished: () => false,
      // Every record waits on one promise, as records whose latest-pointer advances were coalesced do.
      run: async (_r, turn) => {
        await turn.claim(`k${_r.offset}`);
        await gate.promise;
        turn.finish();
        return true;
      },
      finished: () => undefined,
      failed: () => undefined,
      committed: () => undefined,
    });
    await lane.submit([record('0', 1), record('1', 2), record('2', 3)], '2');
    gate.resolve();
    await until(() => control.checkpoints.length === 0 && lane.firstUnfinished === undefined, 'every record settled');
    // The trailing commit is a timer (100 ms), not a microtask: wait on the clock, up to 2 s.
    for (let i = 0; i < 40 && control.checkpoints.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(control.checkpoints).toEqual(['2']);
  });
});
