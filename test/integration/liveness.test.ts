/**
 * Liveness under long faults, at real durations and with the broker's default limits. The faults
 * here are injected between one consumer and a real dependency (proxies.ts), so the tests of this
 * file run side by side: one partition stalled for 2 minutes, S3 black-holed for 2 minutes, a
 * second member joining mid-batch, and a record too big for a default DLQ topic. Each asserts the
 * ledger afterwards.
 */
import { randomBytes } from 'node:crypto';
import avro from 'avsc';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSnapshotSchema } from '../../src/codec.ts';
import type { Snapshot } from '../../src/snapshot.ts';
import { produceWithLibrdkafka } from '../support/clients.ts';
import { REGISTRY, registerSchema } from '../support/interop.ts';
import { assertLedger, httpStatus, metric, watchCommits } from '../support/ledger.ts';
import { registryProxy, sampler, tcpProxy } from '../support/proxies.ts';
import {
  baseTime,
  type ConsumerProcess,
  createTopics,
  createTopicsReady,
  getObject,
  produceRaw,
  readTopic,
  snapshots,
  spawnConsumer,
  type TestEnv,
  testEnv,
  waitFor,
  withAdmin,
} from '../support/stack.ts';
import { framedSnapshots, wire } from '../support/wire.ts';

const S3_PORT = 9000;
const MINUTES = 60_000;
const reader = JSON.parse(loadSnapshotSchema().raw) as { fields: unknown[] } & Record<string, unknown>;

const running: ConsumerProcess[] = [];
afterAll(() => {
  for (const c of running) c.child.kill('SIGKILL');
});

function start(t: TestEnv, env: Record<string, string> = {}): ConsumerProcess {
  const c = spawnConsumer(t, env);
  running.push(c);
  return c;
}

describe.concurrent('liveness through long faults', () => {
  it('keeps every other partition landing while one partition is stalled for 2 minutes', { timeout: 6 * MINUTES }, async () => {
    const t = testEnv('stall-one');
    await createTopics(t, 6);
    const goodId = await registerSchema(`${t.topic}-value`, reader);
    // A second writer schema (compatible: one more optional field) whose id the proxy makes fail.
    const stalledSchema = { ...reader, fields: [...reader.fields, { name: 'stall_marker', type: ['null', 'string'], default: null }] };
    const stalledId = await registerSchema(`${t.topic}-value`, stalledSchema);
    const registry = await registryProxy(REGISTRY);
    registry.failing.add(stalledId);
    const consumer = start(t, { SCHEMA_REGISTRY_URL: registry.url, RETRY_MAX_MS: '5000' });
    const port = await consumer.httpPort();
    const commits = watchCommits(t);
    const base = baseTime();

    const stalled: Snapshot = { last_modified: base, tow_and_go: [{ link_id: 1, segment_id: null }] };
    await produceRaw(t.topic, [
      {
        key: String(base),
        partition: 0,
        value: wire(stalledId, avro.Type.forSchema(stalledSchema as avro.Schema).toBuffer({ ...stalled, stall_marker: null })),
      },
    ]);
    await waitFor('the stalled partition to be reported', async () => (await metric(port, 'tow_and_go_stalled_records')) === 1);

    // For 2 minutes, one snapshot every 2 s on the other five partitions; each must land promptly.
    const others: Snapshot[] = [];
    const delays: number[] = [];
    const readiness = sampler(() => httpStatus(port, '/readyz'), 500);
    const until = Date.now() + 2 * MINUTES;
    for (let i = 1; Date.now() < until; i++) {
      const s: Snapshot = { last_modified: base + i, tow_and_go: [{ link_id: i, segment_id: i }] };
      others.push(s);
      const sent = Date.now();
      await produceRaw(t.topic, framedSnapshots(goodId, [{ snapshot: s, partition: 1 + (i % 5) }]));
      await waitFor(`snapshot ${i} on partition ${1 + (i % 5)}`, () => getObject(`${t.prefix}${s.last_modified}.json`).then(() => true), 30_000, 100);
      delays.push(Date.now() - sent);
      await new Promise((r) => setTimeout(r, Math.max(0, 2000 - (Date.now() - sent))));
    }
    const ready = await readiness.stop();
    expect(
      ready.every((s) => s.value === 503),
      'not ready while a partition is stalled',
    ).toBe(true);
    expect(registry.failures).toBeGreaterThan(3);
    delays.sort((a, b) => a - b);
    const p95 = delays[Math.floor(delays.length * 0.95)] ?? Number.POSITIVE_INFINITY;
    console.log(JSON.stringify({ stallOnePartition: { others: others.length, landedMsP50: delays[Math.floor(delays.length / 2)], landedMsP95: p95 } }));
    expect(p95).toBeLessThan(5000);
    // The other partitions committed to their ends while partition 0 stayed behind.
    const lag = await withAdmin(async (admin) => {
      const [group] = await admin.fetchOffsets({ groupId: t.group, topics: [t.topic] });
      const ends = await admin.fetchTopicOffsets(t.topic);
      // -1: nothing committed yet on that partition.
      return [...ends]
        .sort((x, y) => x.partition - y.partition)
        .map((e) => Number(e.high) - Math.max(0, Number(group?.partitions.find((p) => p.partition === e.partition)?.offset ?? 0)));
    });
    expect(lag.slice(1).every((l) => l <= 1)).toBe(true);
    expect(lag[0]).toBe(1);

    registry.failing.clear();
    const ledger = await assertLedger(t, [stalled, ...others]);
    await waitFor('ready again', async () => (await httpStatus(port, '/readyz')) === 200, 30_000);
    expect(await commits.stop()).toBe(0);
    expect(consumer.child.exitCode).toBeNull();
    console.log(JSON.stringify({ ledger: { test: 'stall-one-partition', ...ledger } }));
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
    await registry.close();
  });

  it('rides out S3 black-holed for 2 minutes: no rebalance, not ready throughout, everything lands after', { timeout: 6 * MINUTES }, async () => {
    const t = testEnv('s3-blackhole');
    await createTopics(t, 3);
    const proxy = await tcpProxy(S3_PORT);
    const consumer = start(t, { S3_ENDPOINT: proxy.url, S3_ACCESS_KEY_ID: 'local-access-key', S3_SECRET_ACCESS_KEY: 'local-secret-key' });
    const port = await consumer.httpPort();
    const commits = watchCommits(t);
    const goodId = await registerSchema(`${t.topic}-value`, reader);
    const before = snapshots(10, baseTime());
    // Produced by librdkafka (a client we did not write), Snappy-compressed.
    const librdkafka = { topic: t.topic, compression: 'snappy' };
    produceWithLibrdkafka(
      librdkafka,
      framedSnapshots(
        goodId,
        before.map((snapshot, i) => ({ snapshot, partition: i % 3 })),
      ),
    );
    await waitFor('the first snapshots', async () => (await metric(port, 'tow_and_go_records_total{outcome="created"}')) === 10);

    proxy.mode = 'blackhole';
    const during = snapshots(30, baseTime() + 100);
    produceWithLibrdkafka(
      librdkafka,
      framedSnapshots(
        goodId,
        during.map((snapshot, i) => ({ snapshot, partition: i % 3 })),
      ),
    );
    const started = Date.now();
    await waitFor('not ready once the writes time out', async () => (await httpStatus(port, '/readyz')) === 503, 30_000, 100);
    const detectedMs = Date.now() - started;
    const readiness = sampler(() => httpStatus(port, '/readyz'), 500);
    await new Promise((r) => setTimeout(r, 2 * MINUTES - detectedMs));
    const ready = await readiness.stop();
    expect(ready.length).toBeGreaterThan(200);
    expect(ready.filter((s) => s.value !== 503)).toEqual([]);
    expect(await metric(port, 'tow_and_go_group_joins_total')).toBe(1);
    expect(await metric(port, 'tow_and_go_retries_total{code="S3_UNAVAILABLE"}')).toBeGreaterThan(0);

    proxy.mode = 'pass';
    const ledger = await assertLedger(t, [...before, ...during]);
    expect(await metric(port, 'tow_and_go_group_joins_total')).toBe(1);
    await waitFor('ready again', async () => (await httpStatus(port, '/readyz')) === 200, 30_000);
    expect(await commits.stop()).toBe(0);
    console.log(JSON.stringify({ ledger: { test: 's3-blackhole-2min', detectedMs, ...ledger } }));
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
    await proxy.close();
  });

  it('keeps the first snapshot when a second member joins while two same-key records wait behind a slow S3', { timeout: 4 * MINUTES }, async () => {
    const t = testEnv('join-mid-batch');
    await createTopics(t, 1);
    const proxy = await tcpProxy(S3_PORT);
    // Slower than S3_TIMEOUT_MS (3 s in tests): the first write times out and stalls, while the
    // second (same key) waits for it. That is where a missed revocation let the second write first.
    proxy.latencyMs = 5000;
    const env = { S3_ENDPOINT: proxy.url, S3_ACCESS_KEY_ID: 'local-access-key', S3_SECRET_ACCESS_KEY: 'local-secret-key' };
    const goodId = await registerSchema(`${t.topic}-value`, reader);
    const key = baseTime();
    const first: Snapshot = { last_modified: key, tow_and_go: [{ link_id: 1, segment_id: 1 }] };
    const second: Snapshot = { last_modified: key, tow_and_go: [{ link_id: 2, segment_id: 2 }] };
    // Both in one batch: produced (by librdkafka) before the first member starts.
    produceWithLibrdkafka(
      { topic: t.topic, compression: 'lz4' },
      framedSnapshots(goodId, [
        { snapshot: first, partition: 0 },
        { snapshot: second, partition: 0 },
      ]),
    );
    const a = start(t, env);
    const portA = await a.httpPort();
    await waitFor('the first write to time out', async () => ((await metric(portA, 'tow_and_go_retries_total{code="S3_UNAVAILABLE"}')) ?? 0) > 0, 60_000, 100);
    const b = start(t, env);
    const portB = await b.httpPort();
    await waitFor('the group to rebalance onto both members', async () => {
      const joins = [await metric(portA, 'tow_and_go_group_joins_total'), await metric(portB, 'tow_and_go_group_joins_total')];
      return (joins[0] ?? 0) >= 2 && (joins[1] ?? 0) >= 1;
    });
    proxy.latencyMs = 0;
    const ledger = await assertLedger(t, [first], new Map([['1', 'OBJECT_CONFLICT']]));
    const dlq = await readTopic(t.dlqTopic);
    expect(dlq.map((r) => r.headers['__connect.errors.offset'])).toContain('1');
    expect(dlq.map((r) => r.headers['__connect.errors.offset'])).not.toContain('0');
    console.log(JSON.stringify({ ledger: { test: 'join-mid-batch', ...ledger } }));
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    await proxy.close();
  });

  it('dead-letters a 1.5 MiB record as an envelope on a DLQ topic with default limits, and the partition moves on', { timeout: 4 * MINUTES }, async () => {
    const t = testEnv('dlq-envelope');
    // The source topic takes bigger records (a producer team's choice); the DLQ keeps the broker's default.
    await withAdmin((admin) =>
      createTopicsReady(admin, [
        { topic: t.topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: String(4 * 1024 * 1024) }] },
        { topic: t.dlqTopic, numPartitions: 1, replicationFactor: 1 },
      ]),
    );
    const goodId = await registerSchema(`${t.topic}-value`, reader);
    const consumer = start(t);
    await consumer.httpPort();
    const big = randomBytes(1.5 * 1024 * 1024);
    const after = snapshots(3, baseTime());
    await produceRaw(t.topic, [
      { key: 'big', value: big, partition: 0 },
      ...framedSnapshots(
        goodId,
        after.map((snapshot) => ({ snapshot, partition: 0 })),
      ),
    ]);
    const ledger = await assertLedger(t, after, new Map([['0', 'WIRE_FORMAT_INVALID']]));
    const [letter] = await readTopic(t.dlqTopic);
    expect(letter?.headers['__tow_and_go.errors.value_omitted']).toBe('true');
    expect(letter?.headers['__tow_and_go.errors.original_size']).toBe(String(big.length));
    console.log(JSON.stringify({ ledger: { test: 'dlq-envelope', ...ledger } }));
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });
});
