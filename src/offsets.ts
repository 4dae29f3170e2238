/**
 * `tow-and-go offsets reset --group <id> --to <earliest|ISO time|partition:offset,…>`: moves the
 * committed offsets of a stopped group. The `partition:offset` form lets an operator skip past a
 * poison batch without Kafka's own tools: only the partitions named are moved.
 * Kafka itself refuses to move the offsets of a group with live members; we check first, so the
 * refusal is one clear line instead of a protocol error.
 */
import type { Admin } from 'kafkajs';
import { InputError } from './errors.ts';
import { assertPartitionsExist, parseFrom, type ReplayStart } from './replay.ts';

export interface PartitionOffset {
  readonly partition: number;
  readonly offset: string;
}

export interface ResetPartition extends PartitionOffset {
  /** The committed offset before the reset; -1 when the group had none. */
  readonly previous: string;
}

interface TopicPartitionOffsets {
  readonly partition: number;
  readonly low: string;
  readonly high: string;
}

/**
 * Pure: the offsets to commit for `partition:offset` targets, checked against the topic as it is.
 * An offset outside [low, high] is refused: the group would hit OffsetOutOfRange and its members
 * would jump to the earliest or latest offset (KAFKA_FROM_BEGINNING), not where the operator said.
 */
export function explicitTargets(topic: string, now: readonly TopicPartitionOffsets[], given: ReadonlyMap<number, string>): PartitionOffset[] {
  assertPartitionsExist(topic, now, given.keys());
  const out: PartitionOffset[] = [];
  for (const [partition, offset] of [...given].sort(([a], [b]) => a - b)) {
    const p = now.find((x) => x.partition === partition);
    if (p === undefined) continue;
    if (BigInt(offset) < BigInt(p.low) || BigInt(offset) > BigInt(p.high)) {
      throw new InputError(`--to ${partition}:${offset}: partition ${partition} of ${topic} has offsets ${p.low} to ${p.high}`);
    }
    out.push({ partition, offset });
  }
  return out;
}

/** Throws an InputError when the group has members: `what` says what they must be stopped for. */
export async function assertNoMembers(admin: Admin, groupId: string, what: string): Promise<void> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  if (group !== undefined && group.members.length > 0) {
    throw new InputError(`group ${groupId} has ${group.members.length} active member(s) (state ${group.state}); stop them before ${what}`);
  }
}

export async function resetGroupOffsets(admin: Admin, groupId: string, topic: string, to: string): Promise<ResetPartition[]> {
  const target = parseFrom(to, '--to');
  await assertNoMembers(admin, groupId, 'resetting its offsets');
  const partitions = await targetOffsets(admin, topic, target);
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const previous = new Map((committed?.partitions ?? []).map((p) => [p.partition, p.offset]));
  await admin.setOffsets({ groupId, topic, partitions: [...partitions] });
  return partitions.map((p) => ({ ...p, previous: previous.get(p.partition) ?? '-1' }));
}

async function targetOffsets(admin: Admin, topic: string, target: ReplayStart): Promise<PartitionOffset[]> {
  const now = await admin.fetchTopicOffsets(topic);
  if (target.kind === 'earliest') return now.map((p) => ({ partition: p.partition, offset: p.low }));
  if (target.kind === 'offsets') return explicitTargets(topic, now, target.offsets);
  // Kafka answers -1 when no record is at or after the time: that is the end of the partition.
  const high = new Map(now.map((p) => [p.partition, p.high]));
  return (await admin.fetchTopicOffsetsByTimestamp(topic, target.ms)).map((p) => ({
    partition: p.partition,
    offset: p.offset === '-1' ? (high.get(p.partition) ?? '0') : p.offset,
  }));
}
