/**
 * `tow-and-go reconcile` against the real stack: every record of a range is accounted for (written,
 * duplicate, dead-lettered, outside) or reported (missing, conflict, undecodable); `--repair` writes
 * the missing ones back byte for byte and never touches a conflict; and a 10,000-snapshot range
 * published through a consumer SIGKILLed again and again has no record unaccounted.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import type { TallyCounts } from '../../src/archive/reconcile-classify.ts';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import { objectBody } from '../../src/snapshot.ts';
import { killAfterProgress } from '../support/crash.ts';
import { landsExactly } from '../support/landing.ts';
import { prng } from '../support/prng.ts';
import {
  allCommitted,
  baseTime,
  type ConsumerProcess,
  createTopics,
  getObjectBytes,
  listKeys,
  NODE,
  offsets,
  produceRaw,
  publish,
  ROOT,
  readTopic,
  s3,
  silent,
  snapshots,
  spawnConsumer,
  type TestEnv,
  testEnv,
  uniqueName,
  waitFor,
  withAdmin,
} from '../support/stack.ts';

interface Summary extends TallyCounts {
  readonly offsets: number;
  readonly groupId: string;
}

interface Unaccounted {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly why: string;
  readonly detail: string;
}

interface Run {
  readonly status: number | null;
  readonly summary: Summary;
  readonly unaccounted: Unaccounted[];
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `tow-and-go reconcile` as its own process and parses what it printed. */
function reconcile(t: TestEnv, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = Date.now();
  const child = spawn(NODE, ['src/cli.ts', 'reconcile', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  return new Promise((resolve) => {
    child.once('close', (status) => {
      // stdout is the summary line alone: the logs go to stderr.
      const lines = stdout.trim().split('\n');
      expect(lines, `stdout of reconcile ${args.join(' ')}; stderr:\n${stderr}`).toHaveLength(1);
      const summary = (JSON.parse(lines[0] ?? '') as { reconcile: Summary }).reconcile;
      const unaccounted = stderr
        .split('\n')
        .filter((l) => l.startsWith('{"unaccounted"'))
        .map((l) => (JSON.parse(l) as { unaccounted: Unaccounted }).unaccounted);
      resolve({ status, summary, unaccounted, stderr, ms: Date.now() - started });
    });
  });
}

/** No record is left unaccounted, and the counts add up to the records read. */
function accountedSum(s: Summary): number {
  return s.written + s.duplicate + s.dead_lettered + s.outside;
}

async function groupState(groupId: string): Promise<string | undefined> {
  return withAdmin(async (admin) => (await admin.describeGroups([groupId])).groups[0]?.state);
}

describe('reconcile', () => {
  const running: RunningService[] = [];
  const processes: ConsumerProcess[] = [];

  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop('test done');
    for (const p of processes.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });

  it('reports one missing and one conflict (exit 1); --repair restores the missing object byte for byte and leaves the conflict alone', async () => {
    const t = testEnv('reconcile');
    await createTopics(t, 3);
    const all = snapshots(20, baseTime() + 90_000);
    await publish(t, all);
    // An identical re-publish (same key, so same partition, later offset) and a record that is not Avro.
    await publish(t, [all[0] as (typeof all)[number]]);
    await produceRaw(t.topic, [{ key: 'poison', value: Buffer.from('not the confluent wire format') }]);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    await waitFor('every offset committed', () => allCommitted(t), 60_000);
    await landsExactly(t, all);
    await service.stop('landed');
    running.splice(0);
    expect(await readTopic(t.dlqTopic)).toHaveLength(1);

    // Behind the service's back: one object deleted, one replaced by other bytes with their own hash.
    const deleted = all[5] as (typeof all)[number];
    const corrupted = all[7] as (typeof all)[number];
    const keyOf = (s: { last_modified: number }) => `${t.prefix}${s.last_modified}.json`;
    const client = s3();
    const otherBytes = Buffer.from(JSON.stringify({ last_modified: corrupted.last_modified, tow_and_go: [] }));
    const otherSha = createHash('sha256').update(otherBytes).digest('hex');
    try {
      await client.send(new DeleteObjectCommand({ Bucket: 'tow-and-go', Key: keyOf(deleted) }));
      await client.send(
        new PutObjectCommand({
          Bucket: 'tow-and-go',
          Key: keyOf(corrupted),
          Body: otherBytes,
          Metadata: { 'content-sha256': otherSha, 'source-offset': '999' },
        }),
      );
    } finally {
      client.destroy();
    }

    const first = await reconcile(t, []);
    expect(first.status, first.stderr).toBe(1);
    expect(first.summary).toMatchObject({
      records: 22,
      written: 18,
      duplicate: 1,
      dead_lettered: 1,
      outside: 0,
      unaccounted: { missing: 1, conflict: 1, undecodable: 0 },
      repaired: 0,
    });
    expect(first.unaccounted.map((u) => [u.key, u.why]).sort()).toEqual([
      [keyOf(deleted), 'missing'],
      [keyOf(corrupted), 'conflict'],
    ]);
    expect(await groupState(first.summary.groupId)).toBe('Dead');

    // Records before MIN_LAST_MODIFIED are outside the kept history: the deleted one is no longer missing.
    const floor = await reconcile(t, [], { MIN_LAST_MODIFIED: String(all[6]?.last_modified) });
    expect(floor.status, floor.stderr).toBe(1);
    expect(floor.summary).toMatchObject({ records: 22, written: 18, outside: 1, unaccounted: { missing: 0, conflict: 1, undecodable: 0 } });

    const repaired = await reconcile(t, ['--repair']);
    expect(repaired.status, repaired.stderr).toBe(1);
    expect(repaired.summary).toMatchObject({
      records: 22,
      written: 19,
      duplicate: 1,
      dead_lettered: 1,
      unaccounted: { missing: 0, conflict: 1, undecodable: 0 },
      repaired: 1,
    });
    expect(repaired.unaccounted.map((u) => [u.key, u.why])).toEqual([[keyOf(corrupted), 'conflict']]);
    const restored = await getObjectBytes(keyOf(deleted));
    expect(restored.bytes.equals(objectBody(deleted))).toBe(true);
    expect(restored.metadata['content-sha256']).toBe(createHash('sha256').update(objectBody(deleted)).digest('hex'));
    const untouched = await getObjectBytes(keyOf(corrupted));
    expect(untouched.bytes.equals(otherBytes)).toBe(true);
    expect(untouched.metadata).toMatchObject({ 'content-sha256': otherSha, 'source-offset': '999' });
    // The conflict was reported, not dead-lettered.
    expect(await readTopic(t.dlqTopic)).toHaveLength(1);
  }, 120_000);

  it('with two destinations: a copy missing from one is missing there and --repair writes only it; a conflict names its destination', async () => {
    // The mirror shares the bucket under a prefix of its own, gzipped: its copies are written from the primary's.
    const mirrorPrefix = `${uniqueName('it-reconcile-mirror')}/`;
    const destinations = [
      { name: 'primary', bucket: 'tow-and-go' },
      { name: 'mirror', bucket: 'tow-and-go', prefix: mirrorPrefix, compression: 'gzip' },
    ];
    const t = testEnv('reconcile-dest', { S3_DESTINATIONS: JSON.stringify(destinations) });
    await createTopics(t, 2);
    const all = snapshots(6, baseTime() + 300_000);
    await publish(t, all);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    await waitFor('every offset committed', () => allCommitted(t), 60_000);
    await service.stop('landed');
    running.splice(0);

    const lost = all[1] as (typeof all)[number];
    const changed = all[2] as (typeof all)[number];
    const client = s3();
    const otherBytes = Buffer.from(JSON.stringify({ last_modified: changed.last_modified, tow_and_go: [] }));
    try {
      await client.send(new DeleteObjectCommand({ Bucket: 'tow-and-go', Key: `${mirrorPrefix}${lost.last_modified}.json` }));
      const metadata = { 'content-sha256': createHash('sha256').update(otherBytes).digest('hex') };
      await client.send(new PutObjectCommand({ Bucket: 'tow-and-go', Key: `${t.prefix}${changed.last_modified}.json`, Body: otherBytes, Metadata: metadata }));
    } finally {
      client.destroy();
    }

    const report = await reconcile(t, []);
    expect(report.status, report.stderr).toBe(1);
    expect(report.summary).toMatchObject({ records: 6, written: 4, unaccounted: { missing: 1, conflict: 1, undecodable: 0 } });
    const lines = new Map(report.unaccounted.map((u) => [u.why, u]));
    expect(lines.get('missing')).toMatchObject({ key: `${mirrorPrefix}${lost.last_modified}.json`, detail: expect.stringContaining('destination mirror') });
    expect(lines.get('conflict')).toMatchObject({ key: `${t.prefix}${changed.last_modified}.json`, detail: expect.stringContaining('destination primary') });

    const repaired = await reconcile(t, ['--repair']);
    expect(repaired.status, repaired.stderr).toBe(1);
    expect(repaired.summary).toMatchObject({ records: 6, written: 5, unaccounted: { missing: 0, conflict: 1, undecodable: 0 }, repaired: 1 });
    const restored = await getObjectBytes(`${mirrorPrefix}${lost.last_modified}.json`);
    expect(restored.contentEncoding).toBe('gzip');
    expect(gunzipSync(restored.bytes).equals(objectBody(lost))).toBe(true);
    expect((await getObjectBytes(`${t.prefix}${changed.last_modified}.json`)).bytes.equals(otherBytes)).toBe(true);
    // The mirror's copy of the conflicting record is still the feed's: only the missing record was written.
    expect(gunzipSync((await getObjectBytes(`${mirrorPrefix}${changed.last_modified}.json`)).bytes).equals(objectBody(changed))).toBe(true);
  }, 90_000);

  it('proves a 10,000-snapshot range with zero unaccounted offsets after a SIGKILL-laden run', async () => {
    const seed = Date.now() % 100_000;
    const random = prng(seed);
    const t = testEnv('reconcile-10k');
    await createTopics(t, 3);
    const all = snapshots(10_000, baseTime() + 200_000);
    const chunks = 5;
    const size = all.length / chunks;
    const committedSum = async () => [...(await offsets(t)).committed.values()].reduce((sum, o) => sum + Math.max(0, Number(o)), 0);

    let consumer = spawnConsumer(t);
    processes.push(consumer);
    for (let i = 0; i < chunks; i++) {
      await publish(t, all.slice(i * size, (i + 1) * size));
      if (i === chunks - 1) break;
      // Killed while it works through the chunk: once it has committed something more, at a random
      // moment (or at once if it already finished what was published: the kill still happens).
      const before = await committedSum();
      const published = (i + 1) * size;
      consumer = await killAfterProgress(t, consumer, {
        what: `progress before kill ${i + 1} (seed ${seed})`,
        progressed: async () => {
          const now = await committedSum();
          return now > before || now === published;
        },
        random,
        jitterMs: 300,
      });
      processes.push(consumer);
    }
    await waitFor(`every offset committed (seed ${seed})`, () => allCommitted(t), 120_000, 500).catch(async (error: unknown) => {
      const port = await consumer.httpPort();
      const health = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.text());
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
      const state = JSON.stringify(await offsets(t), (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v));
      const logs = processes.map((p) => p.output()).join('\n=== next process ===\n');
      writeFileSync(`/tmp/reconcile-consumers-${seed}.log`, `${state}\n${health}\n${metrics}\n${logs}`);
      throw error;
    });
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
    expect(await listKeys(t.prefix)).toHaveLength(all.length);

    const run = await reconcile(t, []);
    expect(run.status, run.stderr).toBe(0);
    expect(run.unaccounted).toEqual([]);
    expect(run.summary).toMatchObject({ records: all.length, offsets: all.length, unaccounted: { missing: 0, conflict: 0, undecodable: 0 } });
    expect(accountedSum(run.summary)).toBe(all.length);
    console.log(`reconcile of ${all.length} records: ${run.ms} ms in all, ${Math.round((all.length * 1000) / run.ms)} records/s (seed ${seed})`);
  }, 200_000);
});
