/**
 * Poison records interleaved with good ones: the good ones land, every poison one is in the DLQ
 * with its reason and the source coordinates, and the partition never stalls.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../../src/codec.ts';
import { DLQ_HEADER } from '../../src/dlq.ts';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import { objectBody } from '../../src/snapshot.ts';
import {
  allCommitted,
  baseTime,
  createTopics,
  getObject,
  listKeys,
  produceRaw,
  readTopic,
  silent,
  snapshots,
  type TestEnv,
  testEnv,
  waitFor,
} from '../support/stack.ts';
import { wire } from '../support/wire.ts';

describe('poison records', () => {
  let t: TestEnv;
  let service: RunningService;

  beforeAll(async () => {
    t = testEnv('poison', { MAX_PAYLOAD_BYTES: '4096' });
    await createTopics(t, 1);
    service = await startConsumerService(t.config, silent);
  });

  afterAll(async () => {
    await service?.stop('test done');
  });

  it('routes each poison record to the DLQ with its reason and lands every good one', async () => {
    const encoder = new AvroEncoder(createRegistry({ url: t.config.SCHEMA_REGISTRY_URL, timeoutMs: 5000 }), loadSnapshotSchema().raw, valueSubject(t.topic));
    const schemaId = await encoder.schemaId();
    const type = loadSnapshotSchema().type;
    const good = snapshots(8, baseTime() + 20_000);
    const goodBytes = await Promise.all(good.map((s) => encoder.encode(s)));
    const valid = goodBytes[0] ?? Buffer.alloc(0);
    const bigSnapshot = { last_modified: baseTime() + 20_500, tow_and_go: Array.from({ length: 2000 }, (_, i) => ({ link_id: i + 1, segment_id: null })) };
    const poison: Array<{ name: string; value: Buffer | null; code: string }> = [
      { name: 'random bytes', value: randomBytes(64), code: 'WIRE_FORMAT_INVALID' },
      { name: 'wrong magic byte', value: Buffer.concat([Buffer.from([1]), valid.subarray(1)]), code: 'WIRE_FORMAT_INVALID' },
      { name: 'truncated body', value: valid.subarray(0, valid.length - 3), code: 'AVRO_DECODE_FAILED' },
      { name: 'unknown schema id', value: wire(987_654_321, valid.subarray(5)), code: 'SCHEMA_UNKNOWN' },
      {
        name: 'fails validation',
        value: wire(schemaId, type.toBuffer({ last_modified: baseTime(), tow_and_go: [{ link_id: -7, segment_id: null }] })),
        code: 'VALIDATION_FAILED',
      },
      { name: 'oversized', value: wire(schemaId, type.toBuffer(bigSnapshot)), code: 'PAYLOAD_TOO_LARGE' },
      { name: 'null value', value: null, code: 'PAYLOAD_NULL' },
      {
        name: 'hostile array count',
        value: wire(schemaId, Buffer.from([0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x02])),
        code: 'AVRO_DECODE_FAILED',
      },
    ];
    // Interleave: good, poison, good, poison, … on one partition, so a stall would show.
    const messages: Array<{ key: string | null; value: Buffer | null; headers?: Record<string, string> }> = [];
    good.forEach((s, i) => {
      messages.push({ key: String(s.last_modified), value: goodBytes[i] ?? null });
      const p = poison[i];
      if (p !== undefined) messages.push({ key: `poison-${i}`, value: p.value, headers: { 'x-test-case': p.name } });
    });
    await produceRaw(t.topic, messages);

    const keys = await waitFor('the good snapshots', async () => {
      const k = await listKeys(t.prefix);
      return k.length === good.length ? k : undefined;
    });
    expect(keys).toEqual(good.map((s) => `${t.prefix}${s.last_modified}.json`).sort());
    for (const s of good) expect((await getObject(`${t.prefix}${s.last_modified}.json`)).body).toBe(objectBody(s).toString('utf8'));

    const dead = await waitFor('every poison record in the DLQ', async () => {
      const d = await readTopic(t.dlqTopic);
      return d.length === poison.length ? d : undefined;
    });
    for (const p of poison) {
      const record = dead.find((d) => d.headers['x-test-case'] === p.name);
      expect(record, p.name).toBeDefined();
      expect(record?.headers[DLQ_HEADER.code], p.name).toBe(p.code);
      expect(record?.headers[DLQ_HEADER.topic]).toBe(t.topic);
      expect(record?.headers[DLQ_HEADER.partition]).toBe('0');
      expect(record?.headers[DLQ_HEADER.offset]).toMatch(/^\d+$/);
      expect(record?.headers[DLQ_HEADER.timestamp]).toMatch(/^\d+$/);
      expect(Date.parse(record?.headers[DLQ_HEADER.failedAt] ?? '')).not.toBeNaN();
      expect(record?.headers[DLQ_HEADER.message]).not.toBe('');
      // The original bytes are kept exactly.
      expect(record?.value == null ? null : Buffer.from(record.value)).toEqual(p.value);
    }
    expect(dead.find((d) => d.headers['x-test-case'] === 'fails validation')?.headers[DLQ_HEADER.schemaId]).toBe(String(schemaId));
    await waitFor('the partition committed to its end', () => allCommitted(t));
    expect(service.metrics.records.get({ outcome: 'dead_lettered' })).toBe(poison.length);
    expect(service.health.ready).toBe(true);
  });

  it('keeps the decoder usable after hostile input (no poisoned cache)', async () => {
    const [late] = snapshots(1, baseTime() + 21_000);
    const encoder = new AvroEncoder(createRegistry({ url: t.config.SCHEMA_REGISTRY_URL, timeoutMs: 5000 }), loadSnapshotSchema().raw, valueSubject(t.topic));
    await produceRaw(t.topic, [{ key: 'late', value: await encoder.encode(late) }]);
    await waitFor('the late snapshot', async () => (await listKeys(t.prefix)).includes(`${t.prefix}${baseTime() + 21_000}.json`));
    await waitFor('the partition committed to its end', () => allCommitted(t));
    expect(service.metrics.records.get({ outcome: 'created' })).toBe(9);
  });
});
