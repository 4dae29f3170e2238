/**
 * Horizontal scaling by consumer group, with a continuous stream on 6 partitions: 1 instance, then
 * 2, then 3; one stopped gracefully, one SIGKILLed; the last one drains. Every snapshot lands, no
 * committed offset ever moves backwards, and partitions are spread across the live instances.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AssignerProtocol } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  allCommitted,
  baseTime,
  type ConsumerProcess,
  createTopics,
  listKeys,
  offsets,
  publish,
  readTopic,
  snapshots,
  spawnConsumer,
  type TestEnv,
  testEnv,
  waitFor,
  withAdmin,
} from '../support/stack.ts';

/** Member id → partitions it owns, as the group coordinator reports it. */
async function assignment(t: TestEnv): Promise<{ state: string; members: number[][] }> {
  return withAdmin(async (admin) => {
    const group = (await admin.describeGroups([t.group])).groups[0];
    const members = (group?.members ?? []).map((m) => {
      const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      return [...(decoded?.assignment[t.topic] ?? [])].sort((a, b) => a - b);
    });
    return { state: group?.state ?? 'Dead', members };
  });
}

/** Waits until the group is stable with `n` members that each own at least one partition. */
async function spreadOver(t: TestEnv, n: number): Promise<{ ms: number; members: number[][] }> {
  const started = Date.now();
  const result = await waitFor(
    `the group to spread over ${n} member(s)`,
    async () => {
      const a = await assignment(t);
      const owned = a.members.flat();
      const ok = a.state === 'Stable' && a.members.length === n && a.members.every((m) => m.length > 0) && new Set(owned).size === 6 && owned.length === 6;
      return ok ? a : undefined;
    },
    90_000,
    100,
  );
  return { ms: Date.now() - started, members: result.members };
}

describe('scale out by consumer group', () => {
  const processes: ConsumerProcess[] = [];

  afterEach(() => {
    for (const p of processes.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });

  it('spreads 6 partitions over 1 → 2 → 3 instances, survives a graceful stop and a SIGKILL, and loses nothing', async () => {
    const t = testEnv('scale', { KAFKA_SESSION_TIMEOUT_MS: '10000', KAFKA_HEARTBEAT_INTERVAL_MS: '1000', PARTITIONS_CONCURRENTLY: '6' });
    await createTopics(t, 6);

    // A continuous stream: 20 snapshots every 250 ms until told to stop.
    let producing = true;
    let published = 0;
    const stream = (async () => {
      let next = baseTime() + 200_000;
      while (producing) {
        const batch = snapshots(20, next, 20);
        next += 20;
        await publish(t, batch);
        published += batch.length;
        await sleep(250);
      }
    })();

    // Committed offsets are sampled all along: none may ever move backwards.
    const seen = new Map<number, bigint>();
    const regressions: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { committed } = await offsets(t);
        for (const [p, o] of committed) {
          const value = BigInt(o);
          if (value < 0n) continue;
          const before = seen.get(p);
          if (before !== undefined && value < before) regressions.push(`partition ${p}: ${before} → ${value}`);
          seen.set(p, value);
        }
        await sleep(200);
      }
    })();

    const rebalances: Record<string, number> = {};
    const a = spawnConsumer(t);
    processes.push(a);
    rebalances['join 1st'] = (await spreadOver(t, 1)).ms;
    await sleep(2000);
    const b = spawnConsumer(t);
    processes.push(b);
    rebalances['add 2nd'] = (await spreadOver(t, 2)).ms;
    await sleep(2000);
    const c = spawnConsumer(t);
    processes.push(c);
    const three = await spreadOver(t, 3);
    rebalances['add 3rd'] = three.ms;
    expect(three.members.map((m) => m.length).sort()).toEqual([2, 2, 2]);
    await sleep(2000);

    a.child.kill('SIGTERM');
    const stopped = Date.now();
    expect(await a.exited).toBe(0);
    await spreadOver(t, 2);
    rebalances['graceful stop'] = Date.now() - stopped;
    await sleep(2000);

    const killed = Date.now();
    b.child.kill('SIGKILL');
    await b.exited;
    const afterKill = await spreadOver(t, 1);
    rebalances['SIGKILL (incl. session timeout)'] = Date.now() - killed;
    expect(afterKill.members[0]).toEqual([0, 1, 2, 3, 4, 5]);

    producing = false;
    await stream;
    const keys = await waitFor(
      `all ${published} snapshots`,
      async () => {
        const k = await listKeys(t.prefix);
        return k.length === published ? k : undefined;
      },
      180_000,
    );
    await waitFor('committed offsets at the end', () => allCommitted(t), 120_000);
    sampling = false;
    await sampler;

    expect(new Set(keys).size).toBe(published);
    expect(regressions).toEqual([]);
    expect(await readTopic(t.dlqTopic)).toEqual([]);
    expect(c.child.exitCode).toBeNull();
    // The numbers for the closing note.
    console.log(JSON.stringify({ scaleOut: { instances: 3, partitions: 6, snapshots: published, lost: published - keys.length, rebalanceMs: rebalances } }));
  });
});
