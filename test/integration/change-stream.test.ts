/**
 * The change stream as the service publishes it (PUBLISH_CHANGES=true), on the real stack: the
 * previous snapshot comes from the archive in S3 (never process memory), so a late snapshot's
 * change is against the nearest earlier one in the archive, and a replay by another group (another
 * process, no shared memory) publishes the very same changes again. Read back with librdkafka and
 * decoded with python3-avro (writer schema from the registry by id).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeRecord } from '../../src/changes/change-record.ts';
import { computeDelta } from '../../src/changes/delta.ts';
import { contentHash } from '../../src/content-hash.ts';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import { objectBody, type Snapshot } from '../../src/snapshot.ts';
import { consumeAvroWithPython } from '../support/interop.ts';
import { landsExactly } from '../support/landing.ts';
import { runCli } from '../support/secure-service.ts';
import { allCommitted, baseTime, createTopics, createTopicsReady, publish, silent, testEnv, uniqueName, waitFor, withAdmin } from '../support/stack.ts';

const links = (ids: readonly [number, number | null][]) => ids.map(([link_id, segment_id]) => ({ link_id, segment_id }));

/** What the change of `current` against `base` must say (lists as the schema orders them: by link_id). */
function expectedChange(prefix: string, current: Snapshot, base: Snapshot | undefined): Partial<ChangeRecord> {
  const delta = computeDelta(base?.tow_and_go ?? [], current.tow_and_go);
  return {
    last_modified: current.last_modified,
    key: `${prefix}${current.last_modified}.json`,
    content_sha256: contentHash(objectBody(current)),
    base: base === undefined ? 'NONE' : 'NEAREST_EARLIER',
    base_last_modified: base?.last_modified ?? null,
    link_count: current.tow_and_go.length,
    gained: delta.gained,
    lost: delta.lost,
    segment_changed: delta.segment_changed,
  };
}

describe('the change stream, from the service', () => {
  const running: RunningService[] = [];
  afterAll(async () => {
    for (const s of running) await s.stop('test done');
  });

  it('publishes each change against the previous archived snapshot, the nearest earlier one for a late snapshot, and the same again, from the archive, on a replay', async () => {
    const changes = uniqueName('it-changes');
    const t = testEnv('change-stream', { PUBLISH_CHANGES: 'true', KAFKA_CHANGES_TOPIC: changes });
    // One source partition: the order the snapshots land in is the order they were published in.
    await createTopics(t, 1);
    await withAdmin((admin) => createTopicsReady(admin, [{ topic: changes, numPartitions: 3, replicationFactor: 1 }]));
    running.push(await startConsumerService(t.config, silent));

    const base = baseTime();
    const first: Snapshot = {
      last_modified: base,
      tow_and_go: links([
        [1, 10],
        [2, null],
        [3, 30],
      ]),
    };
    const second: Snapshot = {
      last_modified: base + 120,
      tow_and_go: links([
        [1, 11],
        [3, 30],
        [4, null],
      ]),
    };
    const third: Snapshot = {
      last_modified: base + 180,
      tow_and_go: links([
        [3, 30],
        [4, 40],
        [5, 50],
      ]),
    };
    // Arrives after `second` although it is older: its change is against `first`, the nearest earlier in the archive.
    const late: Snapshot = {
      last_modified: base + 60,
      tow_and_go: links([
        [1, 10],
        [2, 20],
      ]),
    };
    // One at a time: a record is committed only after its change was published, so each one's
    // predecessors are in the archive before it is processed.
    for (const s of [first, second, third, late]) {
      await publish(t, [s]);
      await waitFor(`${s.last_modified} committed`, () => allCommitted(t));
    }
    await landsExactly(t, [first, second, third, late]);

    const live = await consumeAvroWithPython<ChangeRecord>(changes);
    expect(live.map((r) => r.key)).toEqual(['tow-and-go', 'tow-and-go', 'tow-and-go', 'tow-and-go']);
    expect(new Set(live.map((r) => r.partition)).size).toBe(1);
    expect(live.map((r) => r.value)).toEqual([
      expect.objectContaining(expectedChange(t.prefix, first, undefined)),
      expect.objectContaining(expectedChange(t.prefix, second, first)),
      expect.objectContaining(expectedChange(t.prefix, third, second)),
      expect.objectContaining(expectedChange(t.prefix, late, first)),
    ]);

    // A replay by its own group, in its own process: the archive now holds `late`, so `second`'s change is against it.
    const replay = runCli(['replay', '--from', 'earliest'], t.env);
    expect((await replay.exited).code, replay.stderr()).toBe(0);
    // The replay has several records in flight, so its changes are produced in the order they land: compare by last_modified.
    const again = (await consumeAvroWithPython<ChangeRecord>(changes))
      .slice(live.length)
      .map((r) => r.value)
      .sort((a, b) => a.last_modified - b.last_modified);
    expect(again).toEqual([
      expect.objectContaining(expectedChange(t.prefix, first, undefined)),
      expect.objectContaining(expectedChange(t.prefix, late, first)),
      expect.objectContaining(expectedChange(t.prefix, second, late)),
      expect.objectContaining(expectedChange(t.prefix, third, second)),
    ]);
  }, 180_000);
});
