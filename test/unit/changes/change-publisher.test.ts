/**
 * ChangePublisher with fakes that behave as the real ports do: the real AvroEncoder against a
 * registry on port 0 that answers as a Confluent-compatible registry does, a producer that
 * resolves kafkajs' RecordMetadata[] and refuses batches over max.message.bytes as the broker does
 * (sized by kafkajs' own record-batch encoder), and an archive that answers the as-of lookup.
 */
import { CompressionTypes, type Producer, type ProducerRecord, type RecordMetadata } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ArchivedSnapshot, ChangePublisher, type LandedSnapshot, type SnapshotArchive } from '../../../src/changes/change-publisher.ts';
import { CHANGE_RECORD_KEY, type ChangeRecord, loadChangeSchema } from '../../../src/changes/change-record.ts';
import { AvroEncoder, createRegistry, valueSubject } from '../../../src/codec.ts';
import { KafkaUnavailableError, RegistryUnavailableError, S3UnavailableError } from '../../../src/errors.ts';
import type { Snapshot } from '../../../src/snapshot.ts';
import { type FakeRegistry, fakeRegistry } from '../../support/fake-registry.ts';
import {
  batchSize,
  createErrorFromCode,
  metadataFailure,
  NOT_ENOUGH_REPLICAS,
  produceFailure,
  TOPIC_AUTHORIZATION_FAILED,
} from '../../support/kafkajs-wire.ts';
import { rejectionOf } from '../../support/thrown.ts';

const { raw, type } = loadChangeSchema();
const SCHEMA_ID = 7;
const TOPIC = 'tow-and-go.changes';

let registry: FakeRegistry | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
});

/** Answers as Apicurio's ccompat API does for a subject seen for the first time. */
async function encoder(): Promise<AvroEncoder> {
  registry = await fakeRegistry((r) => {
    if (r.method === 'GET' && r.path.startsWith('/config/')) return { status: 404, body: { error_code: 40401, message: 'Subject not found' } };
    if (r.method === 'POST' && r.path === `/subjects/${encodeURIComponent(valueSubject(TOPIC))}/versions`) return { status: 200, body: { id: SCHEMA_ID } };
    if (r.method === 'PUT' && r.path.startsWith('/config/')) return { status: 200, body: { compatibility: 'BACKWARD' } };
    return { status: 500, body: { message: `unexpected ${r.method} ${r.path}` } };
  });
  return new AvroEncoder(createRegistry({ url: registry.url, timeoutMs: 2000 }), raw, valueSubject(TOPIC));
}

class FakeProducer implements Pick<Producer, 'send'> {
  readonly sent: ProducerRecord[] = [];
  #offset = 0;
  /** Failures to throw, in order, before sends succeed. */
  readonly failures: Array<() => Promise<unknown>> = [];

  readonly maxMessageBytes: number;

  constructor(maxMessageBytes = 1_048_588) {
    this.maxMessageBytes = maxMessageBytes;
  }

  async send(record: ProducerRecord): Promise<RecordMetadata[]> {
    const failure = this.failures.shift();
    if (failure !== undefined) throw await failure();
    for (const m of record.messages) {
      const size = await batchSize({ key: Buffer.from(String(m.key)), value: m.value as Buffer }, record.compression ?? CompressionTypes.None);
      if (size > this.maxMessageBytes) throw await produceFailure(10); // MESSAGE_TOO_LARGE, bare, as the broker answers it
    }
    this.sent.push(record);
    const baseOffset = String(this.#offset);
    this.#offset += record.messages.length;
    return [{ topicName: record.topic, partition: 0, errorCode: 0, baseOffset, logAppendTime: '-1', logStartOffset: '0' }];
  }
}

class MemoryArchive implements SnapshotArchive {
  readonly asked: number[] = [];
  readonly snapshots: readonly Snapshot[];

  constructor(snapshots: readonly Snapshot[] = []) {
    this.snapshots = snapshots;
  }
  async previousBefore(lastModified: number): Promise<ArchivedSnapshot | undefined> {
    this.asked.push(lastModified);
    const earlier = this.snapshots.filter((s) => s.last_modified < lastModified).sort((a, b) => b.last_modified - a.last_modified)[0];
    return earlier === undefined ? undefined : { lastModified: earlier.last_modified, key: `p/${earlier.last_modified}.json`, snapshot: earlier };
  }
}

const snap = (last_modified: number, links: Array<[number, number | null]>): Snapshot => ({
  last_modified,
  tow_and_go: links.map(([link_id, segment_id]) => ({ link_id, segment_id })),
});
const landed = (s: Snapshot): LandedSnapshot => ({ key: `p/${s.last_modified}.json`, lastModified: s.last_modified, sha256: 'cd'.repeat(32), snapshot: s });

const S1 = snap(100, [
  [1, 10],
  [2, null],
  [3, 30],
]);
const S2 = snap(160, [
  [1, 11],
  [3, 30],
  [4, null],
]);
const S3 = snap(220, [
  [1, 11],
  [4, 40],
]);

function decoded(record: ProducerRecord): ChangeRecord {
  const value = record.messages[0]?.value as Buffer;
  expect(value[0]).toBe(0);
  expect(value.readInt32BE(1)).toBe(SCHEMA_ID);
  return type.fromBuffer(value.subarray(5)) as ChangeRecord;
}

describe('ChangePublisher', () => {
  it('publishes the first snapshot as wholly gained, base NONE, keyed, acks all, gzip', async () => {
    const producer = new FakeProducer();
    const publisher = new ChangePublisher({ archive: new MemoryArchive(), encoder: await encoder(), producer });
    const published = await publisher.publish(landed(S1));
    expect(published).toMatchObject({ partition: 0, offset: '0', record: { base: 'NONE', gained_count: 3 } });
    const [sent] = producer.sent;
    expect(sent).toMatchObject({ topic: TOPIC, acks: -1, compression: CompressionTypes.GZIP });
    expect(sent?.messages).toHaveLength(1);
    expect(sent?.messages[0]?.key).toBe(CHANGE_RECORD_KEY);
    expect(decoded(sent as ProducerRecord)).toEqual({
      last_modified: 100,
      key: 'p/100.json',
      content_sha256: 'cd'.repeat(32),
      base: 'NONE',
      base_last_modified: null,
      base_key: null,
      link_count: 3,
      base_link_count: 0,
      duplicate_links: 0,
      delta_omitted: false,
      gained_count: 3,
      lost_count: 0,
      segment_changed_count: 0,
      gained: [
        { link_id: 1, segment_id: 10 },
        { link_id: 2, segment_id: null },
        { link_id: 3, segment_id: 30 },
      ],
      lost: [],
      segment_changed: [],
    });
  });

  it('diffs against the nearest earlier snapshot the archive holds, asked by last_modified', async () => {
    const archive = new MemoryArchive([S1, S2]);
    const producer = new FakeProducer();
    await new ChangePublisher({ archive, encoder: await encoder(), producer }).publish(landed(S3));
    expect(archive.asked).toEqual([220]);
    expect(decoded(producer.sent[0] as ProducerRecord)).toMatchObject({
      base: 'NEAREST_EARLIER',
      base_last_modified: 160,
      base_key: 'p/160.json',
      link_count: 2,
      base_link_count: 3,
      gained: [],
      lost: [3],
      segment_changed: [{ link_id: 4, from: null, to: 40 }],
    });
  });

  it('gives a late snapshot the snapshot before it as base, never a newer one already archived', async () => {
    const producer = new FakeProducer();
    await new ChangePublisher({ archive: new MemoryArchive([S1, S3]), encoder: await encoder(), producer }).publish(landed(S2));
    expect(decoded(producer.sent[0] as ProducerRecord)).toMatchObject({
      last_modified: 160,
      base_last_modified: 100,
      gained: [{ link_id: 4, segment_id: null }],
      lost: [2],
      segment_changed: [{ link_id: 1, from: 10, to: 11 }],
    });
  });

  it('gives the same bytes from another instance (no state kept between publishes)', async () => {
    const enc = await encoder();
    const a = new FakeProducer();
    const b = new FakeProducer();
    const first = new ChangePublisher({ archive: new MemoryArchive([S1, S2]), encoder: enc, producer: a });
    await first.publish(landed(S2));
    await first.publish(landed(S3));
    await new ChangePublisher({ archive: new MemoryArchive([S1, S2, S3]), encoder: enc, producer: b }).publish(landed(S3));
    expect(b.sent[0]?.messages[0]?.value).toEqual(a.sent[1]?.messages[0]?.value);
  });

  it('sends the record without its lists when the topic refuses the full one as too large', async () => {
    const big = snap(
      300,
      Array.from({ length: 60_000 }, (_, i) => [i * 7919 + 1, i] as [number, number]),
    );
    const producer = new FakeProducer(20_000);
    const published = await new ChangePublisher({ archive: new MemoryArchive([S1]), encoder: await encoder(), producer }).publish(landed(big));
    expect(producer.sent).toHaveLength(1);
    const record = decoded(producer.sent[0] as ProducerRecord);
    expect(record).toMatchObject({ delta_omitted: true, gained: [], lost: [], segment_changed: [], gained_count: 60_000 - 1, lost_count: 2 });
    expect(published.record.delta_omitted).toBe(true);
  });

  it('fails retryably when even the record without lists is too large', async () => {
    const producer = new FakeProducer(50);
    const error = await rejectionOf(new ChangePublisher({ archive: new MemoryArchive(), encoder: await encoder(), producer }).publish(landed(S1)));
    expect(error).toBeInstanceOf(KafkaUnavailableError);
    expect(error).toMatchObject({ retryable: true, message: expect.stringMatching(/raise its max.message.bytes/) });
  });

  it('maps produce failures as the DLQ does: all retryable but bugs', async () => {
    const enc = await encoder();
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => produceFailure(NOT_ENOUGH_REPLICAS), /could not produce to change topic tow-and-go.changes \(NOT_ENOUGH_REPLICAS/],
      [() => metadataFailure(createErrorFromCode(TOPIC_AUTHORIZATION_FAILED)), /refused the record \(TOPIC_AUTHORIZATION_FAILED/],
    ];
    for (const [failure, message] of cases) {
      const producer = new FakeProducer();
      producer.failures.push(failure);
      const error = await rejectionOf(new ChangePublisher({ archive: new MemoryArchive(), encoder: enc, producer }).publish(landed(S1)));
      expect(error).toBeInstanceOf(KafkaUnavailableError);
      expect(error).toMatchObject({ retryable: true, message: expect.stringMatching(message) });
    }
    const producer = new FakeProducer();
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    producer.failures.push(async () => bug);
    expect(await rejectionOf(new ChangePublisher({ archive: new MemoryArchive(), encoder: enc, producer }).publish(landed(S1)))).toBe(bug);
  });

  it('fails retryably when the archive or the registry cannot answer', async () => {
    const producer = new FakeProducer();
    const broken: SnapshotArchive = { previousBefore: () => Promise.reject(new Error('socket hang up')) };
    const archiveError = await rejectionOf(new ChangePublisher({ archive: broken, encoder: await encoder(), producer }).publish(landed(S2)));
    expect(archiveError).toBeInstanceOf(S3UnavailableError);
    expect(archiveError).toMatchObject({ retryable: true, message: 'could not look up the snapshot before 160 in the archive: socket hang up' });
    const own = new S3UnavailableError('already classified');
    const classified: SnapshotArchive = { previousBefore: () => Promise.reject(own) };
    expect(await rejectionOf(new ChangePublisher({ archive: classified, encoder: await encoder(), producer }).publish(landed(S2)))).toBe(own);

    await registry?.close();
    registry = await fakeRegistry(() => ({ status: 503, body: { message: 'unavailable' } }));
    const down = new AvroEncoder(createRegistry({ url: registry.url, timeoutMs: 2000 }), raw, valueSubject(TOPIC));
    const registryError = await rejectionOf(new ChangePublisher({ archive: new MemoryArchive(), encoder: down, producer }).publish(landed(S1)));
    expect(registryError).toBeInstanceOf(RegistryUnavailableError);
    expect(registryError).toMatchObject({ retryable: true });
    expect(producer.sent).toHaveLength(0);
  });

  it('refuses an archive answer that is not earlier (an adapter bug), without producing', async () => {
    const producer = new FakeProducer();
    const wrong: SnapshotArchive = { previousBefore: async () => ({ lastModified: 160, key: 'p/160.json', snapshot: S2 }) };
    const error = await rejectionOf(new ChangePublisher({ archive: wrong, encoder: await encoder(), producer }).publish(landed(S2)));
    expect(error).toMatchObject({ message: 'archive.previousBefore(160) returned 160, which is not earlier' });
    expect(error).not.toHaveProperty('retryable');
    expect(producer.sent).toHaveLength(0);
  });
});
