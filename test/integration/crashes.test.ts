/**
 * The consumer process dies (SIGKILL at random points) or is asked to stop under load (SIGTERM).
 * Nothing is lost: whatever was not committed is processed again after a restart, and a
 * re-delivered snapshot is a no-op, byte-identical.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { objectBody } from '../../src/snapshot.ts';
import { killAfterProgress } from '../support/crash.ts';
import { prng } from '../support/prng.ts';
import {
  allCommitted,
  baseTime,
  type ConsumerProcess,
  createTopics,
  getObject,
  listKeys,
  offsets,
  publish,
  readTopic,
  snapshots,
  spawnConsumer,
  testEnv,
  waitFor,
} from '../support/stack.ts';

describe('process crashes and shutdowns', () => {
  const processes: ConsumerProcess[] = [];

  afterEach(() => {
    for (const p of processes.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });

  it('SIGKILL at random points three times, each followed by a restart: every snapshot lands byte-identical', async () => {
    const seed = Date.now() % 100_000;
    const random = prng(seed);
    const t = testEnv('sigkill', { INFLIGHT_PER_PARTITION: '4', PARTITIONS_CONCURRENTLY: '3' });
    await createTopics(t, 3);
    const all = snapshots(600, baseTime() + 70_000, 200);
    await publish(t, all);

    let consumer = spawnConsumer(t);
    processes.push(consumer);
    for (let kill = 0; kill < 3; kill++) {
      const before = (await listKeys(t.prefix)).length;
      // Kill once it has made some progress, at a random moment after that (kills meant for mid-stream).
      consumer = await killAfterProgress(t, consumer, {
        what: `progress before kill ${kill + 1} (seed ${seed})`,
        progressed: async () => {
          const landed = (await listKeys(t.prefix)).length;
          return landed > before || landed === all.length;
        },
        random,
        jitterMs: 400,
      });
      processes.push(consumer);
    }

    const keys = await waitFor(`all ${all.length} objects (seed ${seed})`, async () => {
      const k = await listKeys(t.prefix);
      return k.length === all.length ? k : undefined;
    });
    expect(keys).toEqual(all.map((s) => `${t.prefix}${s.last_modified}.json`).sort());
    for (const s of all) expect((await getObject(`${t.prefix}${s.last_modified}.json`)).body).toBe(objectBody(s).toString('utf8'));
    await waitFor('committed offsets at the end', () => allCommitted(t));
    expect(await readTopic(t.dlqTopic)).toEqual([]);
  });

  it('SIGTERM under load: exits 0 within the bound, commits only what landed, and a restart finishes the rest', async () => {
    const t = testEnv('sigterm', { SHUTDOWN_TIMEOUT_MS: '15000' });
    await createTopics(t, 3);
    const all = snapshots(400, baseTime() + 80_000, 200);
    await publish(t, all);
    const consumer = spawnConsumer(t);
    processes.push(consumer);
    await waitFor('some progress', async () => (await listKeys(t.prefix)).length >= 40, 60_000, 50);

    const signalledAt = Date.now();
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(15_000 + 2_000);
    expect(consumer.output()).toContain('stopped cleanly');

    // Every committed offset is covered by landed objects: all records below it are in S3.
    const landedKeys = new Set(await listKeys(t.prefix));
    const records = await readTopic(t.topic);
    const { committed } = await offsets(t);
    expect(landedKeys.size).toBeLessThan(all.length);
    for (const r of records) {
      const committedOffset = BigInt(committed.get(r.partition) ?? '0');
      if (BigInt(r.offset) < committedOffset) expect(landedKeys.has(`${t.prefix}${r.key}.json`), `${r.partition}@${r.offset}`).toBe(true);
    }
    expect([...committed.values()].some((o) => BigInt(o) > 0n)).toBe(true);

    const restarted = spawnConsumer(t);
    processes.push(restarted);
    await waitFor('every snapshot after the restart', async () => (await listKeys(t.prefix)).length === all.length, 120_000);
    await waitFor('committed offsets at the end', () => allCommitted(t));
    expect(await readTopic(t.dlqTopic)).toEqual([]);
  });
});
