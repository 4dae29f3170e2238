import type { Admin } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { explicitTargets, resetGroupOffsets } from '../../src/offsets.ts';
import { thrownBy } from '../support/thrown.ts';

const NOW = [
  { partition: 0, low: '0', high: '100' },
  { partition: 3, low: '1000', high: '2000' },
  { partition: 5, low: '0', high: '77' },
];

describe('explicitTargets', () => {
  it('moves only the partitions named, in partition order', () => {
    const given = new Map([
      [5, '77'],
      [3, '1042'],
    ]);
    expect(explicitTargets('t', NOW, given)).toEqual([
      { partition: 3, offset: '1042' },
      { partition: 5, offset: '77' },
    ]);
  });

  it.each([
    ['the first offset still there', 3, '1000'],
    ['the log end (skip everything there is)', 3, '2000'],
  ])('accepts %s', (_name, partition, offset) => {
    expect(explicitTargets('t', NOW, new Map([[partition, offset]]))).toEqual([{ partition, offset }]);
  });

  it.each([
    ['below the log start', 3, '999', '--to 3:999: partition 3 of t has offsets 1000 to 2000'],
    ['past the log end', 5, '78', '--to 5:78: partition 5 of t has offsets 0 to 77'],
    ['a partition the topic does not have', 4, '0', 'partition 4 does not exist in t (it has 3)'],
  ])('refuses an offset %s', (_name, partition, offset, message) => {
    const error = thrownBy(InputError, () => explicitTargets('t', NOW, new Map([[partition, offset]])));
    expect(error.message).toBe(message);
    expect(error.retryable).toBe(false);
  });
});

/** The admin calls resetGroupOffsets makes, with answers shaped as kafkajs 2.2.4 returns them. */
function fakeAdmin(members: number) {
  const set: unknown[] = [];
  const admin = {
    describeGroups: async (ids: string[]) => ({
      groups: ids.map((groupId) => ({ groupId, state: members > 0 ? 'Stable' : 'Empty', members: Array.from({ length: members }, () => ({})) })),
    }),
    fetchTopicOffsets: async () => NOW.map((p) => ({ ...p, offset: p.high })),
    fetchTopicOffsetsByTimestamp: async () => NOW.map((p) => ({ partition: p.partition, offset: p.partition === 5 ? '-1' : p.low })),
    fetchOffsets: async () => [{ topic: 't', partitions: [{ partition: 3, offset: '1040', metadata: null }] }],
    setOffsets: async (request: unknown) => {
      set.push(request);
    },
  };
  return { admin: admin as unknown as Admin, set };
}

describe('resetGroupOffsets', () => {
  it('sets partition:offset targets and reports the offsets they replace', async () => {
    const { admin, set } = fakeAdmin(0);
    const result = await resetGroupOffsets(admin, 'g', 't', '3:1042,5:77');
    expect(set).toEqual([
      {
        groupId: 'g',
        topic: 't',
        partitions: [
          { partition: 3, offset: '1042' },
          { partition: 5, offset: '77' },
        ],
      },
    ]);
    expect(result).toEqual([
      { partition: 3, offset: '1042', previous: '1040' },
      { partition: 5, offset: '77', previous: '-1' },
    ]);
  });

  it('sets every partition to its start for earliest, and to the log end where no record is at or after a time', async () => {
    const early = fakeAdmin(0);
    await resetGroupOffsets(early.admin, 'g', 't', 'earliest');
    expect(early.set).toEqual([{ groupId: 'g', topic: 't', partitions: NOW.map((p) => ({ partition: p.partition, offset: p.low })) }]);
    const byTime = fakeAdmin(0);
    await resetGroupOffsets(byTime.admin, 'g', 't', '2024-01-01T00:00:00Z');
    expect(byTime.set).toEqual([
      {
        groupId: 'g',
        topic: 't',
        partitions: [
          { partition: 0, offset: '0' },
          { partition: 3, offset: '1000' },
          { partition: 5, offset: '77' },
        ],
      },
    ]);
  });

  it.each(['3:1042', 'earliest'])('is refused while the group has members (--to %s), and moves nothing', async (to) => {
    const { admin, set } = fakeAdmin(2);
    await expect(resetGroupOffsets(admin, 'g', 't', to)).rejects.toThrow(
      'group g has 2 active member(s) (state Stable); stop them before resetting its offsets',
    );
    expect(set).toEqual([]);
  });

  it('refuses a bad target before it asks anything of Kafka', async () => {
    const { admin, set } = fakeAdmin(2);
    await expect(resetGroupOffsets(admin, 'g', 't', 'yesterday')).rejects.toThrow(
      '--to "yesterday": expected earliest, an ISO-8601 time or partition:offset,…',
    );
    await expect(resetGroupOffsets(admin, 'g', 't', '3:1,3:2')).rejects.toThrow('partition 3 is given twice');
    expect(set).toEqual([]);
  });
});
