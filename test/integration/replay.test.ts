/**
 * Backfill and replay: `tow-and-go replay` re-reads a fixed range with its own group, writes
 * idempotently, ends when its range ends (also on transaction markers and compacted gaps), and
 * never disturbs the live group. `offsets reset` refuses an active group and moves named
 * partitions only.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import type { ReplaySummary } from '../../src/replay.ts';
import type { Snapshot } from '../../src/snapshot.ts';
import { produceWithLibrdkafka } from '../support/clients.ts';
import { encodeSnapshots } from '../support/encode.ts';
import { landsExactly } from '../support/landing.ts';
import {
  allCommitted,
  baseTime,
  createTopics,
  createTopicsReady,
  listKeys,
  NODE,
  offsets,
  publish,
  ROOT,
  readTopic,
  silent,
  snapshots,
  spawnConsumer,
  type TestEnv,
  testEnv,
  waitFor,
  withAdmin,
} from '../support/stack.ts';

interface ReplayOutput extends ReplaySummary {
  readonly groupId: string;
  readonly dryRun: boolean;
}

function cli(t: TestEnv, args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(NODE, ['src/cli.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...t.env, ...env },
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The object keys of these snapshots, sorted as listKeys returns them. */
function keysOf(t: TestEnv, landed: readonly Snapshot[]): string[] {
  return landed.map((s) => `${t.prefix}${s.last_modified}.json`).sort();
}

/** A replay must end by itself; the bound is far above its few seconds, far below the spawn timeout. */
const REPLAY_BOUND_MS = 60_000;

function replay(t: TestEnv, args: string[], env: Record<string, string> = {}): ReplayOutput {
  const started = Date.now();
  const result = cli(t, ['replay', ...args], env);
  expect(Date.now() - started, `replay ${args.join(' ')} took too long`).toBeLessThan(REPLAY_BOUND_MS);
  expect(
    result.stderr
      .split('\n')
      .filter((l) => l.includes('"level":50'))
      .join('\n'),
  ).toBe('');
  expect(result.status).toBe(0);
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  return (JSON.parse(line) as { replay: ReplayOutput }).replay;
}

describe('replay and backfill', () => {
  const running: RunningService[] = [];

  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop('test done');
  });

  it('backfills a few thousand snapshots into an empty prefix, then a second run finds all unchanged', async () => {
    const t = testEnv('backfill');
    await createTopics(t, 3);
    const all = snapshots(3000, baseTime() + 100_000, 5);
    await publish(t, all);

    const first = replay(t, ['--from', 'earliest']);
    expect(first).toMatchObject({ read: 3000, written: 3000, unchanged: 0, conflicts: 0, deadLettered: 0, skipped: 0 });
    expect(first.groupId).toMatch(/^tow-and-go-replay-/);
    expect(await listKeys(t.prefix)).toEqual(keysOf(t, all));

    const dry = replay(t, ['--from', 'earliest', '--dry-run']);
    expect(dry).toMatchObject({ read: 3000, written: 0, unchanged: 3000, wouldWrite: 0 });

    const second = replay(t, ['--from', 'earliest', '--group', `${t.topic}-again`]);
    expect(second).toMatchObject({ read: 3000, written: 0, unchanged: 3000, conflicts: 0, deadLettered: 0 });
    // The live group was never used.
    expect([...(await offsets(t)).committed.values()].every((o) => o === '-1')).toBe(true);
  });

  it('--dry-run on an empty prefix reports what would be written and writes nothing', async () => {
    const t = testEnv('dry-run');
    await createTopics(t, 2);
    await publish(t, snapshots(50, baseTime() + 110_000));
    const dry = replay(t, ['--dry-run']);
    expect(dry).toMatchObject({ read: 50, wouldWrite: 50, written: 0, unchanged: 0 });
    expect(await listKeys(t.prefix)).toEqual([]);
  });

  it('replays by time range: exactly the snapshots whose record timestamps fall in [from, to)', async () => {
    const t = testEnv('time-range');
    await createTopics(t, 3);
    const before = snapshots(30, baseTime() + 120_000);
    const inside = snapshots(30, baseTime() + 121_000);
    const after = snapshots(30, baseTime() + 122_000);
    await publish(t, before);
    await sleep(1500);
    const from = new Date();
    await publish(t, inside);
    await sleep(500);
    const to = new Date();
    await sleep(1000);
    await publish(t, after);

    const result = replay(t, ['--from', from.toISOString(), '--to', to.toISOString()]);
    expect(result.written).toBe(30);
    expect(await listKeys(t.prefix)).toEqual(inside.map((s) => `${t.prefix}${s.last_modified}.json`).sort());
  });

  it('runs beside the live consumer without disturbing it, and offsets reset is refused while the group is active', async () => {
    const t = testEnv('beside-live');
    await createTopics(t, 3);
    const service = await startConsumerService(t.config, silent);
    running.push(service);
    await waitFor('the live member to join', async () => service.health.joined, 60_000);
    const all = snapshots(600, baseTime() + 130_000);
    await publish(t, all.slice(0, 300));

    const publishing = publish(t, all.slice(300));
    const result = replay(t, ['--from', 'earliest']);
    await publishing;
    // The replay ends at the end offsets captured when it started: it read at least the first 300.
    expect(result.read).toBeGreaterThanOrEqual(300);
    expect(result.written + result.unchanged).toBe(result.read);
    expect(result.conflicts + result.deadLettered).toBe(0);

    await waitFor('the live group at the end', () => allCommitted(t));
    expect(await listKeys(t.prefix)).toEqual(keysOf(t, all));
    expect(service.metrics.groupJoins.get()).toBe(1);
    expect(service.metrics.records.get({ outcome: 'dead_lettered' })).toBe(0);

    const refused = cli(t, ['offsets', 'reset', '--group', t.group, '--to', 'earliest']);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain(`group ${t.group} has 1 active member(s)`);

    await running.splice(0)[0]?.stop('reset test');
    await waitFor('the group to be empty', () => withAdmin(async (a) => (await a.describeGroups([t.group])).groups[0]?.members.length === 0), 60_000);
    const reset = cli(t, ['offsets', 'reset', '--group', t.group, '--to', 'earliest']);
    expect(reset.status).toBe(0);
    const { committed } = await offsets(t);
    expect([...committed.values()].every((o) => o === '0')).toBe(true);
  });
});

/** Offsets present in a partition, as kcat (librdkafka) reads them: gaps show what compaction removed. */
function offsetsPresent(topic: string): number[] {
  const r = spawnSync('kcat', ['-C', '-b', '127.0.0.1:9092', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o\n'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return r.stdout.trim().split('\n').filter(Boolean).map(Number);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('replay ends when its range ends', () => {
  it('on transaction markers and an aborted tail from a transactional producer we did not write (librdkafka)', async () => {
    const t = testEnv('replay-txn');
    await createTopics(t, 2);
    const committed0 = snapshots(5, baseTime() + 140_000);
    const aborted = snapshots(3, baseTime() + 141_000);
    const committed1 = snapshots(3, baseTime() + 142_000);
    // One encoder, so the schema is registered once (concurrent first registrations race in the registry).
    const encoded = await encodeSnapshots(t, [...committed0, ...aborted, ...committed1]);
    const [a, b, c] = [encoded.slice(0, 5), encoded.slice(5, 8), encoded.slice(8)];
    // Partition 0: 0-4 data, 5 COMMIT, 6-8 aborted data, 9 ABORT, the last thing in the partition.
    // Partition 1: 0-2 data, 3 COMMIT.
    produceWithLibrdkafka({ topic: t.topic, compression: 'none', transactionalId: `${t.topic}-tx` }, [
      ...a.map((r) => ({ ...r, partition: 0 })),
      'commit',
      ...b.map((r) => ({ ...r, partition: 0 })),
      'abort',
      ...c.map((r) => ({ ...r, partition: 1 })),
      'commit',
    ]);
    const ends = await withAdmin((admin) => admin.fetchTopicOffsets(t.topic));
    expect(ends.map((p) => [p.partition, p.high]).sort()).toEqual([
      [0, '10'],
      [1, '4'],
    ]);

    const all = replay(t, ['--from', 'earliest']);
    expect(all).toMatchObject({ read: 8, written: 8, unchanged: 0, conflicts: 0, deadLettered: 0, skipped: 0 });
    expect(await listKeys(t.prefix)).toEqual(keysOf(t, [...committed0, ...committed1]));

    // Ranges with no data record at all: only the aborted transaction and its marker, only markers.
    expect(replay(t, ['--from', '0:6'])).toMatchObject({ read: 0, written: 0 });
    expect(replay(t, ['--from', '0:9,1:3'])).toMatchObject({ read: 0, written: 0 });
    expect(replay(t, ['--from', '0:5', '--dry-run'])).toMatchObject({ read: 0, wouldWrite: 0 });
    // The data batch's last offset is the commit marker: the range [0, 6) ends on it.
    expect(replay(t, ['--from', '0:0'])).toMatchObject({ read: 5, unchanged: 5 });
  });

  it('on records compacted away at the end of its range', async () => {
    const t = testEnv('replay-compact');
    // Test data settings on this topic only: roll segments at once and clean any dirt, so the
    // broker's log cleaner (which wakes every 15 s) compacts it within a test's time.
    const compact = [
      { name: 'cleanup.policy', value: 'compact' },
      { name: 'segment.ms', value: '500' },
      { name: 'min.cleanable.dirty.ratio', value: '0.001' },
      { name: 'delete.retention.ms', value: '0' },
    ];
    await withAdmin((admin) =>
      createTopicsReady(admin, [
        { topic: t.topic, numPartitions: 1, replicationFactor: 1, configEntries: compact },
        { topic: t.dlqTopic, numPartitions: 1, replicationFactor: 1 },
      ]),
    );
    const kept = snapshots(5, baseTime() + 150_000);
    const superseded = snapshots(5, baseTime() + 151_000);
    await publish(t, kept); // offsets 0-4
    await publish(t, superseded); // offsets 5-9: the same keys come again below
    await sleep(1100);
    const to = new Date();
    await publish(t, superseded); // offsets 10-14, in a new segment
    await sleep(1100);
    await publish(t, snapshots(1, baseTime() + 152_000)); // offset 15 rolls the segment again, so 10-14 can be cleaned against
    await waitFor(
      'the log cleaner to remove offsets 5-9',
      async () => offsetsPresent(t.topic).join() === [...range(0, 5), ...range(10, 16)].join(),
      90_000,
      1000,
    );

    // The range is [0, 10): its last five offsets no longer exist.
    const result = replay(t, ['--from', 'earliest', '--to', to.toISOString()]);
    expect(result).toMatchObject({ read: 5, written: 5, skipped: 0, conflicts: 0, deadLettered: 0 });
    expect(await listKeys(t.prefix)).toEqual(keysOf(t, kept));
  });
});

describe('replay --group', () => {
  it('refuses the live group, and any group with members, in one line with exit 2', async () => {
    const t = testEnv('replay-group');
    await createTopics(t, 2);
    await publish(t, snapshots(10, baseTime() + 160_000));
    const live = spawnConsumer(t);
    try {
      await waitFor('the live member', () => withAdmin(async (a) => (await a.describeGroups([t.group])).groups[0]?.members.length === 1), 60_000);
      await waitFor('the live group at the end', () => allCommitted(t));
      const before = await offsets(t);
      const members = () => withAdmin(async (a) => (await a.describeGroups([t.group])).groups[0]?.members.map((m) => m.memberId));
      const memberBefore = await members();

      const asLive = cli(t, ['replay', '--group', t.group]);
      expect(asLive.status).toBe(2);
      expect(asLive.stderr.trim().split('\n')).toEqual([
        `tow-and-go: --group ${t.group} is the live consumer group (KAFKA_GROUP_ID); replay needs a group of its own`,
      ]);
      // The same group seen from a deployment whose live group is another: it has a member.
      const busy = cli(t, ['replay', '--group', t.group], { KAFKA_GROUP_ID: `${t.topic}-elsewhere` });
      expect(busy.status).toBe(2);
      expect(busy.stderr.trim().split('\n')).toEqual([
        `tow-and-go: --group ${t.group} has 1 active member(s) (state Stable); replay needs a group nobody is using`,
      ]);

      // Nothing joined or committed in the live group.
      expect((await offsets(t)).committed).toEqual(before.committed);
      expect(await members()).toEqual(memberBefore);
    } finally {
      live.child.kill('SIGTERM');
      await live.exited;
    }
  });
});

describe('offsets reset --to partition:offset', () => {
  const running: RunningService[] = [];

  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop('test done');
  });

  it('moves only the partitions named, so the group skips the records before them', async () => {
    const t = testEnv('reset-skip');
    await createTopics(t, 2);
    const all = snapshots(40, baseTime() + 170_000);
    await publish(t, all);
    const records = await readTopic(t.topic);
    const { end } = await offsets(t);
    const high1 = end.get(1) ?? '0';
    expect(records.filter((r) => r.partition === 0).length).toBeGreaterThan(3);
    expect(Number(high1)).toBeGreaterThan(0);

    const outOfRange = cli(t, ['offsets', 'reset', '--group', t.group, '--to', `1:${Number(high1) + 1}`]);
    expect(outOfRange.status).toBe(2);
    expect(outOfRange.stderr.trim().split('\n')).toEqual([`tow-and-go: --to 1:${Number(high1) + 1}: partition 1 of ${t.topic} has offsets 0 to ${high1}`]);

    // Skip the first three records of partition 0 and the whole of partition 1.
    const reset = cli(t, ['offsets', 'reset', '--group', t.group, '--to', `0:3,1:${high1}`]);
    expect(reset.stderr).toBe('');
    expect(reset.status).toBe(0);
    expect(JSON.parse(reset.stdout)).toEqual({
      reset: {
        group: t.group,
        topic: t.topic,
        partitions: [
          { partition: 0, offset: '3', previous: '-1' },
          { partition: 1, offset: high1, previous: '-1' },
        ],
      },
    });

    const service = await startConsumerService(t.config, silent);
    running.push(service);
    const wanted = new Set(records.filter((r) => r.partition === 0 && Number(r.offset) >= 3).map((r) => Number(r.key)));
    await landsExactly(
      t,
      all.filter((s) => wanted.has(s.last_modified)),
    );
    await waitFor('the group at the end', () => allCommitted(t));
    expect(await listKeys(t.prefix)).toEqual(
      keysOf(
        t,
        all.filter((s) => wanted.has(s.last_modified)),
      ),
    );

    const refused = cli(t, ['offsets', 'reset', '--group', t.group, '--to', '0:0']);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split('\n')).toEqual([
      `tow-and-go: group ${t.group} has 1 active member(s) (state Stable); stop them before resetting its offsets`,
    ]);
    expect((await offsets(t)).committed.get(0)).toBe(end.get(0));
  });
});
