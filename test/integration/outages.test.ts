/**
 * Dependencies failing under the consumer, for real: S3Proxy stopped for 20 s, the registry
 * stopped while the consumer restarts, the broker restarted, S3 slowed down. In every case all
 * snapshots land, none is dead-lettered, and the committed offsets reach the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../../src/codec.ts';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import { landsExactly } from '../support/landing.ts';
import {
  allCommitted,
  baseTime,
  type ConsumerProcess,
  createTopics,
  listKeys,
  produceRaw,
  publish,
  readTopic,
  silent,
  snapshots,
  spawnConsumer,
  stack,
  stackWith,
  type TestEnv,
  testEnv,
  waitFor,
} from '../support/stack.ts';

/**
 * Everything landed, exactly (never "at least n" keys: a listing can show S3Proxy's temporary file
 * of a write in progress, `<key>-<uuid>`, while the real object is not there yet), byte for byte,
 * committed to the end, and nothing dead-lettered.
 */
async function expectAllAccountedFor(t: TestEnv, expected: ReturnType<typeof snapshots>): Promise<void> {
  await landsExactly(t, expected, 120_000);
  await waitFor('committed offsets at the end', () => allCommitted(t));
  expect(await readTopic(t.dlqTopic)).toEqual([]);
}

describe('outages of real dependencies', () => {
  const running: RunningService[] = [];
  const processes: ConsumerProcess[] = [];

  afterEach(async () => {
    // Whatever a test did, the stack is whole again for the next one.
    stack('up');
    for (const s of running.splice(0)) await s.stop('test done');
    for (const p of processes.splice(0)) {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });

  afterAll(() => {
    stack('up');
  });

  it('S3 down for 20 s mid-stream: stalls, reports not ready, then lands everything with nothing dead-lettered', async () => {
    const t = testEnv('s3-down');
    await createTopics(t, 3);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    const all = snapshots(60, baseTime() + 30_000);
    await publish(t, all.slice(0, 20));
    await landsExactly(t, all.slice(0, 20));

    stack('stop', 's3proxy');
    const downAt = Date.now();
    await publish(t, all.slice(20));
    await waitFor('readiness to drop while S3 is down', async () => !service.health.ready, 30_000, 100);
    expect(service.health.live).toBe(true);
    await sleep(Math.max(0, 20_000 - (Date.now() - downAt)));
    expect(service.metrics.retries.get({ code: 'S3_UNAVAILABLE' })).toBeGreaterThan(0);
    stack('start', 's3proxy');

    await expectAllAccountedFor(t, all);
    await waitFor('readiness to come back', async () => service.health.ready, 30_000);
    expect(service.metrics.records.get({ outcome: 'dead_lettered' })).toBe(0);
  });

  it('registry down while the consumer restarts with a cold cache: stalls, then lands everything with nothing dead-lettered', async () => {
    const t = testEnv('registry-down');
    await createTopics(t, 3);
    const all = snapshots(40, baseTime() + 40_000);
    // Encode everything while the registry is up; the second half is produced during the outage.
    const encoder = new AvroEncoder(createRegistry({ url: t.config.SCHEMA_REGISTRY_URL, timeoutMs: 5000 }), loadSnapshotSchema().raw, valueSubject(t.topic));
    const encoded = await Promise.all(all.map(async (s) => ({ key: String(s.last_modified), value: await encoder.encode(s) })));
    await produceRaw(t.topic, encoded.slice(0, 20));
    const first = spawnConsumer(t);
    processes.push(first);
    await landsExactly(t, all.slice(0, 20));

    // The running consumer has the schema cached and would sail through the outage: stop it first.
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    stack('stop', 'registry');
    await produceRaw(t.topic, encoded.slice(20));
    const second = spawnConsumer(t);
    processes.push(second);
    const port = await second.httpPort();
    // The new process has never seen the schema id: it must stall, not dead-letter.
    await waitFor(
      'the restarted consumer to report a stall',
      async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text().then((m) => /tow_and_go_retries_total\{code="REGISTRY_UNAVAILABLE"\} [1-9]/.test(m)),
      60_000,
    );
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
    expect(await listKeys(t.prefix)).toEqual(
      all
        .slice(0, 20)
        .map((s) => `${t.prefix}${s.last_modified}.json`)
        .sort(),
    );
    stack('start', 'registry');

    await expectAllAccountedFor(t, all);
    expect(second.child.exitCode).toBeNull();
  });

  it('broker restart mid-stream: the consumer recovers by itself and everything lands', async () => {
    const t = testEnv('broker-restart');
    await createTopics(t, 3);
    const consumer = spawnConsumer(t);
    processes.push(consumer);
    const all = snapshots(40, baseTime() + 50_000);
    await publish(t, all.slice(0, 20));
    await landsExactly(t, all.slice(0, 20));

    stack('restart', 'kafka');
    await publish(t, all.slice(20));

    await expectAllAccountedFor(t, all);
    expect(consumer.child.exitCode).toBeNull();
    const port = await consumer.httpPort();
    await waitFor('liveness after the broker restart', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200, 30_000);
  });

  it('slow S3 (1.5 s per request): no rebalance and no record processed twice', async () => {
    const t = testEnv('s3-slow', { INFLIGHT_PER_PARTITION: '4' });
    await createTopics(t, 2);
    stackWith({ S3PROXY_LATENCY_MS: '1500' }, 'restart', 's3proxy');
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    await waitFor('group join', async () => service.health.joined, 60_000);
    const all = snapshots(24, baseTime() + 60_000);
    await publish(t, all);

    await expectAllAccountedFor(t, all);
    expect(service.metrics.groupJoins.get()).toBe(1);
    expect(service.metrics.records.get({ outcome: 'created' })).toBe(all.length);
    expect(service.metrics.records.get({ outcome: 'unchanged' })).toBe(0);
    stack('restart', 's3proxy');
  });
});
