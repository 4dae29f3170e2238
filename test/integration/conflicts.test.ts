/**
 * Keys are last_modified: an identical re-delivery is a no-op, a different snapshot with the same
 * key never silently replaces the first (it goes to the DLQ as a conflict), unless overwrites are on.
 */
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../../src/codec.ts';
import { loadConfig } from '../../src/config.ts';
import { DLQ_HEADER } from '../../src/dlq.ts';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import { contentHash, objectBody, type Snapshot } from '../../src/snapshot.ts';
import { allCommitted, baseTime, createTopics, getObject, getObjectBytes, produceRaw, publish, readTopic, silent, testEnv, waitFor } from '../support/stack.ts';

const first: Snapshot = { last_modified: baseTime() + 90_000, tow_and_go: [{ link_id: 1, segment_id: 10 }] };
const second: Snapshot = { last_modified: baseTime() + 90_000, tow_and_go: [{ link_id: 2, segment_id: null }] };

describe('same last_modified twice', () => {
  const running: RunningService[] = [];

  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop('test done');
  });

  it('keeps the first object, treats an identical re-delivery as a no-op, and dead-letters the conflict', async () => {
    const t = testEnv('conflict');
    await createTopics(t, 1);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    const key = `${t.prefix}${first.last_modified}.json`;
    await publish(t, [first]);
    await waitFor('the first object', () => getObject(key).then((o) => o.body));
    await publish(t, [first, second]);

    const dead = await waitFor('the conflict in the DLQ', async () => {
      const d = await readTopic(t.dlqTopic);
      return d.length > 0 ? d : undefined;
    });
    await waitFor('commits at the end', () => allCommitted(t));
    expect(dead).toHaveLength(1);
    expect(dead[0]?.headers[DLQ_HEADER.code]).toBe('OBJECT_CONFLICT');
    expect(dead[0]?.headers[DLQ_HEADER.offset]).toBe('2');
    const object = await getObject(key);
    expect(object.body).toBe(objectBody(first).toString('utf8'));
    expect(object.metadata['source-offset']).toBe('0');
    expect(object.metadata['content-sha256']).toBe(contentHash(objectBody(first)));
    expect(service.metrics.records.get({ outcome: 'created' })).toBe(1);
    expect(service.metrics.records.get({ outcome: 'unchanged' })).toBe(1);
    expect(service.metrics.records.get({ outcome: 'dead_lettered' })).toBe(1);
  });

  it('orders unkeyed records by last_modified too: the first is kept, the second dead-lettered', async () => {
    const t = testEnv('unkeyed');
    await createTopics(t, 1);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    const encoder = new AvroEncoder(createRegistry({ url: t.config.SCHEMA_REGISTRY_URL, timeoutMs: 5000 }), loadSnapshotSchema().raw, valueSubject(t.topic));
    await produceRaw(t.topic, [
      { key: null, value: await encoder.encode(first) },
      { key: null, value: await encoder.encode(second) },
    ]);
    const dead = await waitFor('the conflict in the DLQ', async () => {
      const d = await readTopic(t.dlqTopic);
      return d.length > 0 ? d : undefined;
    });
    expect(dead.map((d) => [d.headers[DLQ_HEADER.offset], d.headers[DLQ_HEADER.code]])).toEqual([['1', 'OBJECT_CONFLICT']]);
    expect((await getObject(`${t.prefix}${first.last_modified}.json`)).body).toBe(objectBody(first).toString('utf8'));
    await waitFor('commits at the end', () => allCommitted(t));
  });

  it('with S3_COMPRESSION=gzip stores gzip bytes of the same JSON, and a re-delivery without compression is still a no-op', async () => {
    const t = testEnv('gzip', { S3_COMPRESSION: 'gzip' });
    await createTopics(t, 1);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    const key = `${t.prefix}${first.last_modified}.json`;
    await publish(t, [first]);
    const stored = await waitFor('the gzip object', () => getObjectBytes(key).catch(() => undefined));
    expect(stored.contentEncoding).toBe('gzip');
    expect(gunzipSync(stored.bytes).toString('utf8')).toBe(objectBody(first).toString('utf8'));
    expect(stored.metadata['content-sha256']).toBe(contentHash(objectBody(first)));
    await running.splice(0)[0]?.stop('switch compression off');

    // Same group, compression off: the identical re-delivery compares by the JSON's hash.
    const plain = await startConsumerService(loadConfig({ ...t.env, S3_COMPRESSION: 'none' }), silent);
    running.push(plain);
    await publish(t, [first]);
    await waitFor('the re-delivery', async () => plain.metrics.records.total() === 1);
    expect(plain.metrics.records.get({ outcome: 'unchanged' })).toBe(1);
    expect((await getObjectBytes(key)).bytes).toEqual(stored.bytes);
    expect(await readTopic(t.dlqTopic)).toEqual([]);
  });

  it('replaces the object when S3_ON_CONFLICT=overwrite', async () => {
    const t = testEnv('overwrite', { S3_ON_CONFLICT: 'overwrite' });
    await createTopics(t, 1);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    await publish(t, [first, second]);
    await waitFor('commits at the end', async () => (await allCommitted(t)) && service.metrics.records.total() === 2);
    expect((await getObject(`${t.prefix}${first.last_modified}.json`)).body).toBe(objectBody(second).toString('utf8'));
    expect(service.metrics.records.get({ outcome: 'overwritten' })).toBe(1);
    expect(await readTopic(t.dlqTopic)).toEqual([]);
  });
});
