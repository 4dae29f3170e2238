/**
 * The live consumer's mode: `stream` hands a batch to the partition's lane and returns once its
 * records have started, so kafkajs can fetch on. These tests hold the invariants that mode must
 * keep: commits only past a contiguous finished prefix (across batches), same-key order across
 * batches, a stall that holds and rewinds the partition to the first unfinished record even after
 * `stream` returned, stale batches fetched before the rewind dropped, and nothing lost on a new
 * generation or on shutdown.
 */
import { describe, expect, it } from 'vitest';
import { S3UnavailableError } from '../../src/errors.ts';
import type { StreamControl } from '../../src/pipeline.ts';
import { deferred, FakeControl, flush, NOW, record, setup, until } from '../support/pipeline-fakes.ts';

/** What the real source does with these calls: pause the partition, seek, resume after the delay, fail the process. */
class FakeStreamControl extends FakeControl implements StreamControl {
  holds = 0;
  readonly rewinds: { offset: string; delayMs: number }[] = [];
  readonly failures: unknown[] = [];

  hold(): void {
    this.holds++;
  }

  rewind(offset: string, delayMs: number): void {
    this.rewinds.push({ offset, delayMs });
  }

  fail(error: unknown): void {
    this.failures.push(error);
  }
}

const written = (s: ReturnType<typeof setup>) => s.sink.finished;

describe('Pipeline.stream', () => {
  it('returns once every record has started, before any landed; they land and commit afterwards', async () => {
    const s = setup();
    const control = new FakeStreamControl();
    const gate = deferred();
    s.sink.before = () => gate.promise;
    await expect(s.pipeline.stream([record('0', NOW - 1), record('1', NOW)], control, '1', '0')).resolves.toBe(true);
    expect(s.sink.writes).toHaveLength(2);
    expect(written(s)).toEqual([]);
    gate.resolve();
    await until(() => control.checkpoints.includes('1'), 'the batch committed');
    expect(written(s)).toEqual(['0', '1']);
  });

  it('keeps one watermark across batches: a later batch lands first, the commit waits for the earliest record', async () => {
    const s = setup();
    const control = new FakeStreamControl();
    const slow = deferred();
    s.sink.before = (object) => (object.lineage.offset === '0' ? slow.promise : undefined);
    await s.pipeline.stream([record('0', NOW - 3), record('1', NOW - 2)], control, '1', '0');
    await s.pipeline.stream([record('2', NOW - 1), record('3', NOW)], control, '3', '2');
    await until(() => written(s).length === 3, 'the three fast records landed');
    await flush();
    expect(control.checkpoints).toEqual([]);
    slow.resolve();
    await until(() => control.checkpoints.at(-1) === '3', 'committed through the second batch');
    expect(control.checkpoints.every((o, i, all) => i === 0 || BigInt(o) > BigInt(all[i - 1] ?? '-1'))).toBe(true);
  });

  it('writes same-key records of different batches in offset order, so the first snapshot wins', async () => {
    const s = setup();
    const control = new FakeStreamControl();
    const slow = deferred();
    s.sink.before = (object) => (object.lineage.offset === '0' ? slow.promise : undefined);
    await s.pipeline.stream([record('0', NOW, { links: [{ link_id: 1, segment_id: null }] })], control, '0', '0');
    await s.pipeline.stream([record('1', NOW, { links: [{ link_id: 2, segment_id: null }] })], control, '1', '1');
    await flush();
    expect(s.sink.writes.map((w) => w.lineage.offset)).toEqual(['0']);
    slow.resolve();
    await until(() => control.checkpoints.at(-1) === '1', 'both finished');
    expect(s.sink.objects.get(`tow-and-go/${NOW}.json`)?.lineage.offset).toBe('0');
    expect(s.dlq.sent.map((d) => [d.record.offset, d.error.code])).toEqual([['1', 'OBJECT_CONFLICT']]);
  });

  it('on a stall after it returned: holds the partition, lets the rest finish, commits the prefix, rewinds to the stalled record', async () => {
    const s = setup();
    const control = new FakeStreamControl();
    s.sink.before = (object, attempt) => {
      if (object.lineage.offset === '6' && attempt === 0) throw new S3UnavailableError('PutObject failed: SlowDown (HTTP 503)');
    };
    await expect(s.pipeline.stream([record('5', NOW - 2), record('6', NOW - 1), record('7', NOW)], control, '7', '5')).resolves.toBe(true);
    await until(() => control.rewinds.length === 1, 'rewound');
    expect(control.holds).toBe(1);
    expect(control.rewinds).toEqual([{ offset: '6', delayMs: 50 }]);
    expect(control.checkpoints).toEqual(['5']);
    expect(s.pipeline.stalled).toBe(1);

    // A batch fetched before the rewind (from past the stall) is dropped: nothing starts, nothing is resolved.
    await expect(s.pipeline.stream([record('8', NOW + 1)], control, '8', '8')).resolves.toBe(false);
    expect(s.sink.writes.map((w) => w.lineage.offset)).toEqual(['5', '6', '7']);

    // The re-fetch from the stalled record starts a new lane; 7 finished ahead and is not redone.
    await expect(s.pipeline.stream([record('6', NOW - 1), record('7', NOW), record('8', NOW + 1)], control, '8', '6')).resolves.toBe(true);
    await until(() => control.checkpoints.at(-1) === '8', 'committed through the re-fetch');
    expect(s.sink.writes.map((w) => w.lineage.offset)).toEqual(['5', '6', '7', '6', '8']);
    expect(s.pipeline.stalled).toBe(0);
    expect(s.dlq.calls).toBe(0);
  });

  it('fails through the control on a bug, after holding the partition', async () => {
    const s = setup();
    const control = new FakeStreamControl();
    const bug = new TypeError('a bug');
    s.sink.before = () => {
      throw bug;
    };
    await s.pipeline.stream([record('0')], control, '0', '0');
    await until(() => control.failures.length === 1, 'failed');
    expect(control.failures).toEqual([bug]);
    expect(control.holds).toBe(1);
    expect(control.rewinds).toEqual([]);
    expect(control.checkpoints).toEqual([]);
  });

  it('starts a new generation only after the old lane finished its writes, and the old one commits nothing once revoked', async () => {
    const s = setup();
    const old = new FakeStreamControl();
    const slow = deferred();
    s.sink.before = (_object, attempt) => (attempt === 0 ? slow.promise : undefined);
    await s.pipeline.stream([record('0')], old, '0', '0');
    await until(() => s.sink.writes.length === 1, 'the old owner is writing');
    old.active = false; // revoked: commits are no longer ours
    const next = new FakeStreamControl();
    const started = s.pipeline.stream([record('0')], next, '0', '0');
    await flush();
    expect(s.sink.writes).toHaveLength(1);
    slow.resolve();
    await expect(started).resolves.toBe(true);
    await until(() => next.checkpoints.includes('0'), 'the new owner committed');
    expect(old.checkpoints).toEqual([]);
    expect(s.sink.writes.map((w) => w.lineage.offset)).toEqual(['0', '0']);
    expect(s.sink.finished).toEqual(['0', '0']);
  });

  it('starts nothing for an inactive control', async () => {
    const s = setup();
    const control = new FakeStreamControl();
    control.active = false;
    await expect(s.pipeline.stream([record('0')], control, '0', '0')).resolves.toBe(false);
    expect(s.sink.writes).toEqual([]);
  });

  it('drain() waits for every lane to land what is in flight and commit it (graceful shutdown)', async () => {
    const s = setup();
    const a = new FakeStreamControl();
    const b = new FakeStreamControl();
    const gate = deferred();
    s.sink.before = () => gate.promise;
    await s.pipeline.stream([record('0', NOW - 1, { partition: 0 })], a, '0', '0');
    await s.pipeline.stream([record('9', NOW, { partition: 1 })], b, '9', '9');
    a.committable = true;
    b.committable = true;
    a.active = false;
    b.active = false;
    let drained = false;
    const draining = s.pipeline.drain().then(() => {
      drained = true;
    });
    await flush();
    expect(drained).toBe(false);
    gate.resolve();
    await draining;
    expect(a.checkpoints).toEqual(['0']);
    expect(b.checkpoints).toEqual(['9']);
  });
});
