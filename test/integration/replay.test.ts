/**
 * Backfill and replay: `tow-and-go replay` re-reads a fixed range with its own group, writes
 * idempotently, and never disturbs the live group. `offsets reset` refuses an active group.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import type { ReplaySummary } from '../../src/replay.ts';
import {
  allCommitted,
  baseTime,
  createTopics,
  listKeys,
  NODE,
  offsets,
  publish,
  ROOT,
  silent,
  snapshots,
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

function replay(t: TestEnv, args: string[], env: Record<string, string> = {}): ReplayOutput {
  const result = cli(t, ['replay', ...args], env);
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
    expect((await listKeys(t.prefix)).length).toBe(3000);

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
    expect((await listKeys(t.prefix)).length).toBe(600);
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
