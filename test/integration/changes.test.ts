/**
 * Issue 12, item 4, on the real stack: a ChangePublisher with a real kafkajs producer and the real
 * registry (Apicurio's Confluent-compatible API), and an in-memory archive that snapshots "land"
 * in. The change topic is read back by clients nobody here wrote: librdkafka
 * (python3-confluent-kafka) consumes, the writer schema is fetched from the registry by the id in
 * each record, and Apache Avro's Python library decodes. A consumer that follows the schema's
 * rules then rebuilds the newest snapshot from the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArchivedSnapshot, ChangePublisher, type SnapshotArchive } from '../../src/changes/change-publisher.ts';
import { CHANGE_RECORD_KEY, type ChangeRecord, loadChangeSchema } from '../../src/changes/change-record.ts';
import { AvroEncoder, createRegistry, valueSubject } from '../../src/codec.ts';
import { contentHash, objectBody, objectKey, type Snapshot } from '../../src/snapshot.ts';
import { createProducer } from '../../src/source/kafka.ts';
import { consumeAvroWithPython, REGISTRY } from '../support/interop.ts';
import { prng } from '../support/prng.ts';
import { createTopicsReady, kafkaClient, uniqueName, withAdmin } from '../support/stack.ts';

const PREFIX = 'changes-it/';

/** The archive port as S3 answers it: snapshots that have landed, looked up as of a last_modified. */
class MemoryArchive implements SnapshotArchive {
  readonly #landed = new Map<number, Snapshot>();
  land(s: Snapshot): void {
    this.#landed.set(s.last_modified, s);
  }
  get(key: string): Snapshot | undefined {
    return [...this.#landed.values()].find((s) => objectKey(PREFIX, s) === key);
  }
  async previousBefore(lastModified: number): Promise<ArchivedSnapshot | undefined> {
    const earlier = [...this.#landed.keys()].filter((t) => t < lastModified).sort((a, b) => b - a)[0];
    const snapshot = earlier === undefined ? undefined : this.#landed.get(earlier);
    return snapshot === undefined ? undefined : { lastModified: snapshot.last_modified, key: objectKey(PREFIX, snapshot), snapshot };
  }
}

/** Snapshots of about `links` links, each ~1 % gained, ~1 % lost and ~1 % re-segmented from the one before. */
function evolve(count: number, links: number, base: number): Snapshot[] {
  const random = prng(12);
  let current = new Map<number, number | null>();
  for (let i = 0; i < links; i++) current.set(17_800_000 + i * 3, random() < 0.2 ? null : 457_000_000 + i);
  let next = 17_800_000 + links * 3;
  const out: Snapshot[] = [];
  for (let s = 0; s < count; s++) {
    if (s > 0) {
      const map = new Map(current);
      for (const id of current.keys()) {
        const r = random();
        if (r < 0.01) map.delete(id);
        else if (r < 0.02) map.set(id, random() < 0.5 ? null : 458_000_000 + Math.floor(random() * 1e6));
      }
      for (let g = 0; g < links / 100; g++) map.set(next++, random() < 0.5 ? null : 459_000_000 + g);
      current = map;
    }
    out.push({ last_modified: base + 60 * s, tow_and_go: [...current].map(([link_id, segment_id]) => ({ link_id, segment_id })) });
  }
  return out;
}

/** A consumer that follows the rules in avro/tow-and-go-change.avsc; `reload` reads the snapshot at a key. */
function follow(records: readonly ChangeRecord[], reload: (key: string) => Snapshot) {
  let state = new Map<number, number | null>();
  let at: { lastModified: number; sha256: string } | undefined;
  const actions: string[] = [];
  for (const r of records) {
    if (at !== undefined && (r.last_modified < at.lastModified || (r.last_modified === at.lastModified && r.content_sha256 === at.sha256))) {
      actions.push(`skip ${r.last_modified}`);
      continue;
    }
    if (!r.delta_omitted && r.base === 'NONE') {
      state = new Map(r.gained.map((g) => [g.link_id, g.segment_id]));
      actions.push(`replace ${r.last_modified}`);
    } else if (!r.delta_omitted && at !== undefined && r.base_last_modified === at.lastModified) {
      for (const id of r.lost) state.delete(id);
      for (const g of r.gained) state.set(g.link_id, g.segment_id);
      for (const c of r.segment_changed) state.set(c.link_id, c.to);
      actions.push(`apply ${r.last_modified}`);
    } else {
      state = new Map(reload(r.key).tow_and_go.map((l) => [l.link_id, l.segment_id]));
      actions.push(`reload ${r.last_modified}`);
    }
    expect(state.size).toBe(r.link_count);
    at = { lastModified: r.last_modified, sha256: r.content_sha256 };
  }
  return { state, actions };
}

describe('change stream on the real stack', () => {
  const topic = uniqueName('it-changes');
  const producer = createProducer(kafkaClient());
  const archive = new MemoryArchive();
  const snapshots = evolve(4, 5_000, 1_684_216_515);
  let publisher: ChangePublisher;

  beforeAll(async () => {
    // Three partitions on purpose: the constant key must still put every change in one.
    await withAdmin((admin) => createTopicsReady(admin, [{ topic, numPartitions: 3, replicationFactor: 1 }]));
    await producer.connect();
    const encoder = new AvroEncoder(createRegistry({ url: REGISTRY, timeoutMs: 10_000 }), loadChangeSchema().raw, valueSubject(topic));
    publisher = new ChangePublisher({ archive, encoder, producer }, { topic });
  });

  afterAll(async () => {
    await producer.disconnect();
  });

  it('publishes one delta per landed snapshot, in one partition, that a follower rebuilds the newest snapshot from', async () => {
    const [s1, s2, s3, s4] = snapshots as [Snapshot, Snapshot, Snapshot, Snapshot];
    // s1, s2 and s4 land in order; s3 lands late, after s4 (another partition's stalled write).
    for (const s of [s1, s2, s4, s3]) {
      archive.land(s);
      await publisher.publish({ key: objectKey(PREFIX, s), lastModified: s.last_modified, sha256: contentHash(objectBody(s)), snapshot: s });
    }

    const read = await consumeAvroWithPython<ChangeRecord>(topic);
    expect(read.map((r) => r.value.last_modified)).toEqual([s1, s2, s4, s3].map((s) => s.last_modified));
    expect(new Set(read.map((r) => r.partition)).size).toBe(1);
    expect(read.map((r) => r.offset)).toEqual([0, 1, 2, 3]);
    expect(read.every((r) => r.key === CHANGE_RECORD_KEY && r.magic === 0)).toBe(true);

    const subject = await fetch(`${REGISTRY}/subjects/${encodeURIComponent(valueSubject(topic))}/versions/latest`).then(
      (res) => res.json() as Promise<{ id: number }>,
    );
    expect(read.every((r) => r.schemaId === subject.id)).toBe(true);

    const [c1, c2, c4, c3] = read.map((r) => r.value) as [ChangeRecord, ChangeRecord, ChangeRecord, ChangeRecord];
    expect(c1).toMatchObject({ base: 'NONE', base_last_modified: null, base_key: null, gained_count: 5_000, link_count: 5_000, lost: [] });
    expect(c2).toMatchObject({ base: 'NEAREST_EARLIER', base_last_modified: s1.last_modified, base_key: objectKey(PREFIX, s1), key: objectKey(PREFIX, s2) });
    expect(c4).toMatchObject({ base: 'NEAREST_EARLIER', base_last_modified: s2.last_modified });
    // The late one is against the snapshot before it, not against s4, which had already landed.
    expect(c3).toMatchObject({ base: 'NEAREST_EARLIER', base_last_modified: s2.last_modified });
    expect(c2.content_sha256).toBe(contentHash(objectBody(s2)));

    // The deltas are the real differences, sorted by link_id.
    const before = new Map(s1.tow_and_go.map((l) => [l.link_id, l.segment_id]));
    const after = new Map(s2.tow_and_go.map((l) => [l.link_id, l.segment_id]));
    expect(c2.lost).toEqual([...before.keys()].filter((id) => !after.has(id)).sort((a, b) => a - b));
    expect(c2.gained.map((g) => g.link_id)).toEqual([...after.keys()].filter((id) => !before.has(id)).sort((a, b) => a - b));
    for (const g of c2.gained) expect(g.segment_id).toBe(after.get(g.link_id));
    for (const c of c2.segment_changed) expect([c.from, c.to]).toEqual([before.get(c.link_id), after.get(c.link_id)]);
    expect(c2.segment_changed.length).toBe([...after.keys()].filter((id) => before.has(id) && before.get(id) !== after.get(id)).length);
    for (const c of [c2, c3, c4]) {
      expect(c.gained_count).toBeGreaterThan(25);
      expect(c.lost_count).toBeGreaterThan(25);
      expect(c.segment_changed_count).toBeGreaterThan(25);
    }

    const { state, actions } = follow(
      read.map((r) => r.value),
      (key) => archive.get(key) ?? expect.fail(`no snapshot at ${key}`),
    );
    expect(actions).toEqual([`replace ${s1.last_modified}`, `apply ${s2.last_modified}`, `apply ${s4.last_modified}`, `skip ${s3.last_modified}`]);
    expect(state).toEqual(new Map(s4.tow_and_go.map((l) => [l.link_id, l.segment_id])));

    // A follower that missed s2's change sees a base that is not its state, and reloads s4 whole.
    const gap = follow([c1, c4, c3], (key) => archive.get(key) ?? expect.fail(`no snapshot at ${key}`));
    expect(gap.actions).toEqual([`replace ${s1.last_modified}`, `reload ${s4.last_modified}`, `skip ${s3.last_modified}`]);
    expect(gap.state).toEqual(state);
  });

  it('sends a redelivered snapshot again, against the archive as it is now (s3 has landed since), and a follower skips it', async () => {
    const [, , s3, s4] = snapshots as [Snapshot, Snapshot, Snapshot, Snapshot];
    await publisher.publish({ key: objectKey(PREFIX, s4), lastModified: s4.last_modified, sha256: contentHash(objectBody(s4)), snapshot: s4 });
    const read = await consumeAvroWithPython<ChangeRecord>(topic);
    expect(read).toHaveLength(5);
    expect(read[4]?.value).toMatchObject({
      last_modified: s4.last_modified,
      content_sha256: read[2]?.value.content_sha256,
      base_last_modified: s3.last_modified,
      link_count: read[2]?.value.link_count,
    });
    expect(
      follow(
        read.map((r) => r.value),
        () => expect.fail('no reload expected'),
      ).actions.at(-1),
    ).toBe(`skip ${s4.last_modified}`);
  });
});
