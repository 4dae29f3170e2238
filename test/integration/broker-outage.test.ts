/**
 * A broker outage of 3 minutes, mid-stream, with kafkajs' real crash-and-restart cycle underneath:
 * the process stays up (never a crash loop), /readyz answers 503 throughout, and everything lands
 * once the broker is back. The broker is shared, so this file runs alone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadSnapshotSchema } from '../../src/codec.ts';
import { produceWithLibrdkafka } from '../support/clients.ts';
import { registerSchema } from '../support/interop.ts';
import { assertLedger, httpStatus, watchCommits } from '../support/ledger.ts';
import { sampler } from '../support/proxies.ts';
import { baseTime, type ConsumerProcess, createTopics, snapshots, spawnConsumer, stack, testEnv, waitFor } from '../support/stack.ts';
import { framedSnapshots } from '../support/wire.ts';

const OUTAGE_MS = 3 * 60_000;
let consumer: ConsumerProcess | undefined;
afterAll(() => {
  consumer?.child.kill('SIGKILL');
});

describe('broker outage', () => {
  it('stays alive and not ready through a 3-minute broker outage, then lands everything', { timeout: 8 * 60_000 }, async () => {
    const t = testEnv('broker-outage');
    await createTopics(t, 3);
    const schemaId = await registerSchema(`${t.topic}-value`, JSON.parse(loadSnapshotSchema().raw));
    const frame = (list: ReturnType<typeof snapshots>) =>
      framedSnapshots(
        schemaId,
        list.map((snapshot, i) => ({ snapshot, partition: i % 3 })),
      );

    // Every record is produced by librdkafka (a client we did not write), LZ4-compressed.
    const librdkafka = { topic: t.topic, compression: 'lz4' };
    consumer = spawnConsumer(t);
    const port = await consumer.httpPort();
    const commits = watchCommits(t, 1000);
    const before = snapshots(20, baseTime());
    produceWithLibrdkafka(librdkafka, frame(before));
    await waitFor('ready', async () => (await httpStatus(port, '/readyz')) === 200, 60_000);

    // Mid-stream: more records go in and the broker stops at once, before they can all land.
    const middle = snapshots(20, baseTime() + 500);
    produceWithLibrdkafka(librdkafka, frame(middle));
    const stoppedAt = Date.now();
    stack('stop', 'kafka');
    await waitFor('not ready once the broker is gone', async () => (await httpStatus(port, '/readyz')) === 503, 60_000, 250);
    const detectedMs = Date.now() - stoppedAt;
    const probes = sampler(async () => [await httpStatus(port, '/healthz'), await httpStatus(port, '/readyz')] as const, 500);
    await new Promise((r) => setTimeout(r, OUTAGE_MS - detectedMs));
    const seen = await probes.stop();
    expect(consumer.child.exitCode, 'the process exited during the outage').toBeNull();
    expect(seen.filter((s) => s.value[0] !== 200)).toEqual([]);
    expect(seen.filter((s) => s.value[1] !== 503)).toEqual([]);
    stack('start', 'kafka');

    const after = snapshots(20, baseTime() + 1000);
    await waitFor(
      'the broker to take records again',
      async () => {
        produceWithLibrdkafka(librdkafka, frame(after));
        return true;
      },
      180_000,
      2000,
    );
    const ledger = await assertLedger(t, [...before, ...middle, ...after]);
    await waitFor('ready again', async () => (await httpStatus(port, '/readyz')) === 200, 120_000);
    expect(await commits.stop()).toBe(0);
    expect(consumer.child.exitCode).toBeNull();
    console.log(JSON.stringify({ ledger: { test: 'broker-outage-3min', detectedMs, samples: seen.length, ...ledger } }));
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });
});
