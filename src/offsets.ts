/**
 * `tow-and-go offsets reset --group <id> --to <earliest|ISO time>`: rewinds a stopped group.
 * Kafka itself refuses to move the offsets of a group with live members; we check first, so the
 * refusal is one clear line instead of a protocol error.
 */
import type { Admin } from 'kafkajs';
import { InputError } from './errors.ts';
import { parseFrom } from './replay.ts';

export async function resetGroupOffsets(admin: Admin, groupId: string, topic: string, to: string): Promise<{ partition: number; offset: string }[]> {
  const target = parseFrom(to);
  if (target.kind === 'offsets') throw new InputError(`--to ${JSON.stringify(to)}: expected earliest or an ISO-8601 time`);
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  if (group !== undefined && group.members.length > 0) {
    throw new InputError(`group ${groupId} has ${group.members.length} active member(s) (state ${group.state}); stop them before resetting its offsets`);
  }
  const partitions =
    target.kind === 'earliest'
      ? (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.low }))
      : await Promise.all(
          (await admin.fetchTopicOffsetsByTimestamp(topic, target.ms)).map(async (p) => ({
            partition: p.partition,
            offset: p.offset === '-1' ? await highOf(admin, topic, p.partition) : p.offset,
          })),
        );
  await admin.setOffsets({ groupId, topic, partitions });
  return partitions;
}

async function highOf(admin: Admin, topic: string, partition: number): Promise<string> {
  const p = (await admin.fetchTopicOffsets(topic)).find((x) => x.partition === partition);
  return p?.high ?? '0';
}
