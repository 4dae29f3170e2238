/**
 * Issue 7, "read what real producers write": writer schemas registered by a producer nobody here
 * wrote (Apache Avro's Python library + librdkafka), each one checked by the registry itself
 * against our reader schema, produced to one topic and read by one real consumer process.
 *
 * Each case has a subject of its own that holds our reader schema first, then the writer: the
 * registry checks a new version against the latest one only, so this keeps every check against our
 * reader. The level differs by case because the two directions differ: FORWARD asks "can the
 * previous schema (ours) read the new writer?", which is what this consumer needs, and refuses a
 * rename that only writer-side aliases explain; BACKWARD asks the opposite and refuses int for
 * long. FULL is both. Each case states the level the registry accepts it at and, where one
 * refuses it, that it does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSnapshotSchema } from '../../src/codec.ts';
import { DLQ_HEADER } from '../../src/dlq.ts';
import type { Snapshot } from '../../src/snapshot.ts';
import { type PythonRecord, producePython, readS3WithBoto3, registerOverRest, setCompatibility, withoutPointer } from '../support/interop.ts';
import {
  allCommitted,
  baseTime,
  type ConsumerProcess,
  createTopics,
  getObject,
  listKeys,
  offsets,
  readTopic,
  spawnConsumer,
  type TestEnv,
  testEnv,
  waitFor,
  withAdmin,
} from '../support/stack.ts';

type Json = Record<string, unknown>;
type Level = 'BACKWARD' | 'FORWARD' | 'FULL';
const READER = JSON.parse(loadSnapshotSchema().raw) as Json;
const LINK_ID = { name: 'link_id', type: 'long' };
const SEGMENT_ID = { name: 'segment_id', type: ['null', 'long'], default: null };

function writer(o: { ns?: string; name?: string; aliases?: string[]; extra?: Json[]; link?: Json }): Json {
  return {
    type: 'record',
    name: o.name ?? 'TowAndGoSnapshot',
    ...(o.ns === undefined ? {} : { namespace: o.ns }),
    ...(o.aliases === undefined ? {} : { aliases: o.aliases }),
    fields: [
      { name: 'last_modified', type: 'long' },
      { name: 'tow_and_go', type: { type: 'array', items: o.link ?? { type: 'record', name: 'TowAndGoLink', fields: [LINK_ID, SEGMENT_ID] } } },
      ...(o.extra ?? []),
    ],
  };
}

function link(fields: unknown[], o: { name?: string; aliases?: string[] } = {}): Json {
  return { type: 'record', name: o.name ?? 'TowAndGoLink', ...(o.aliases === undefined ? {} : { aliases: o.aliases }), fields };
}

interface Case {
  readonly name: string;
  readonly schema: Json;
  readonly acceptedAt: Level;
  readonly refusedAt?: Level;
  /** What the producer writes for a snapshot (the writer's shape). */
  readonly write: (s: Snapshot) => Written;
}

const asIs = (s: Snapshot): Written => s;

const CASES: readonly Case[] = [
  { name: 'namespace', schema: writer({ ns: 'org.example.feed' }), acceptedAt: 'FULL', write: asIs },
  {
    name: 'union-order',
    schema: writer({ ns: 'org.example.feed', link: link([LINK_ID, { name: 'segment_id', type: ['long', 'null'] }]) }),
    acceptedAt: 'FULL',
    write: asIs,
  },
  {
    name: 'added-field',
    schema: writer({ ns: 'com.towandgo.traffic', extra: [{ name: 'source', type: 'string', default: 'unknown' }] }),
    acceptedAt: 'FULL',
    write: (s) => ({ ...s, source: 'feed-b' }),
  },
  {
    name: 'removed-optional-field',
    schema: writer({ ns: 'org.example.feed', link: link([LINK_ID]) }),
    acceptedAt: 'FULL',
    write: (s) => ({ ...s, tow_and_go: s.tow_and_go.map((l) => ({ link_id: l.link_id })) }),
  },
  {
    name: 'int-for-long',
    schema: writer({ ns: 'org.example.feed', link: link([{ name: 'link_id', type: 'int' }, SEGMENT_ID]) }),
    acceptedAt: 'FORWARD',
    refusedAt: 'BACKWARD',
    write: asIs,
  },
  {
    name: 'renamed-with-aliases',
    schema: writer({
      ns: 'org.example.feed',
      name: 'Snapshot',
      aliases: ['com.towandgo.traffic.TowAndGoSnapshot'],
      link: link([LINK_ID, SEGMENT_ID], { name: 'Link', aliases: ['com.towandgo.traffic.TowAndGoLink'] }),
    }),
    acceptedAt: 'BACKWARD',
    refusedAt: 'FORWARD',
    write: asIs,
  },
];

/** segment_id as a string: no level accepts it, so it is registered where nothing checks it. */
const INCOMPATIBLE = writer({ ns: 'org.example.feed', link: link([LINK_ID, { name: 'segment_id', type: 'string' }]) });
const PROTO = 'syntax = "proto3"; message Snapshot { int64 last_modified = 1; }';

/** Two snapshots per case, one with a null segment_id, at last_modified values of their own. */
function snapshotsFor(index: number): Snapshot[] {
  const at = baseTime() + 100 * (index + 1);
  return [
    { last_modified: at, tow_and_go: [{ link_id: 17_806_054 + index, segment_id: 457_160_414 }] },
    {
      last_modified: at + 1,
      tow_and_go: [
        { link_id: 17_857_682, segment_id: null },
        { link_id: 17_857_686 + index, segment_id: 414_984_019 },
      ],
    },
  ];
}

interface Written {
  readonly last_modified: number;
  readonly tow_and_go: ReadonlyArray<{ readonly link_id: number; readonly segment_id?: number | null }>;
}

/** What the reader schema makes of a written value: fields it lacks are dropped, missing ones defaulted. */
function readBack(w: Written): Snapshot {
  return { last_modified: w.last_modified, tow_and_go: w.tow_and_go.map((l) => ({ link_id: l.link_id, segment_id: l.segment_id ?? null })) };
}

async function registerChecked(subject: string, level: Level, schema: Json): Promise<{ status: number; id: number | undefined; message: string }> {
  expect((await registerOverRest(subject, READER)).status, `our reader schema under ${subject}`).toBe(200);
  await setCompatibility(subject, level);
  const { status, body } = await registerOverRest(subject, schema);
  return { status, id: body.id, message: body.message ?? '' };
}

describe('writer schemas from producers nobody here wrote (python3-avro + librdkafka)', () => {
  let t: TestEnv;
  let consumer: ConsumerProcess;

  beforeAll(async () => {
    t = testEnv('interop');
    await createTopics(t, 3);
    consumer = spawnConsumer(t);
  });

  afterAll(async () => {
    if (consumer === undefined) return;
    consumer.child.kill('SIGTERM');
    await consumer.exited;
  });

  it('lands every compatible writer JSON-equal, dead-letters the incompatible ones naming the field, and commits to the end', async () => {
    const records: PythonRecord[] = [];
    const expected = new Map<string, Snapshot>();
    for (const [index, c] of CASES.entries()) {
      const subject = `${t.topic}-${c.name}-value`;
      const accepted = await registerChecked(subject, c.acceptedAt, c.schema);
      expect(accepted.status, `${c.name} at ${c.acceptedAt}: ${accepted.message}`).toBe(200);
      if (c.refusedAt !== undefined) {
        const refused = await registerChecked(`${t.topic}-${c.name}-${c.refusedAt.toLowerCase()}-value`, c.refusedAt, c.schema);
        expect(refused.status, `${c.name} at ${c.refusedAt}`).toBe(409);
      }
      for (const s of snapshotsFor(index)) {
        const value = c.write(s);
        records.push({ key: String(s.last_modified), schemaId: accepted.id ?? -1, schema: c.schema, value });
        expected.set(`${t.prefix}${s.last_modified}.json`, readBack(value));
      }
    }

    for (const level of ['FORWARD', 'BACKWARD'] as const) {
      const refused = await registerChecked(`${t.topic}-incompatible-${level.toLowerCase()}-value`, level, INCOMPATIBLE);
      expect(refused.status, `segment_id as string at ${level}`).toBe(409);
    }
    const rogue = await registerOverRest(`${t.topic}-rogue-value`, INCOMPATIBLE);
    const proto = await registerOverRest(`${t.topic}-proto-value`, PROTO, 'PROTOBUF');
    expect([rogue.status, proto.status]).toEqual([200, 200]);
    const rogueKey = String(baseTime() + 5000);
    const protoKey = String(baseTime() + 5001);
    records.push(
      {
        key: rogueKey,
        schemaId: rogue.body.id ?? -1,
        schema: INCOMPATIBLE,
        value: { last_modified: baseTime() + 5000, tow_and_go: [{ link_id: 1, segment_id: '7' }] },
      },
      { key: protoKey, schemaId: proto.body.id ?? -1, rawHex: '08c3bfcfc606' },
    );

    await producePython(t.topic, records);

    const wantKeys = [...expected.keys()].sort();
    let seen: string[] = [];
    const dlqSize = async () => (await withAdmin((admin) => admin.fetchTopicOffsets(t.dlqTopic))).reduce((n, p) => n + Number(p.high), 0);
    try {
      await waitFor('exactly the compatible snapshots in S3', async () => {
        seen = await listKeys(t.prefix);
        return JSON.stringify(seen) === JSON.stringify(wantKeys);
      });
      await waitFor('the two incompatible records in the DLQ', async () => (await dlqSize()) === 2);
      await waitFor('committed offsets to reach the end offsets', () => allCommitted(t));
    } catch (error) {
      throw new Error(`${String(error)}\nS3 keys: ${seen.join(' ')}\nconsumer output (tail):\n${consumer.output().slice(-4000)}`);
    }

    for (const [key, snapshot] of expected) expect(JSON.parse((await getObject(key)).body), key).toEqual(snapshot);
    const { snapshots: viaBoto3, pointer } = withoutPointer(await readS3WithBoto3(t.prefix), t.prefix);
    expect(Object.keys(viaBoto3).sort()).toEqual(wantKeys);
    // The latest pointer names the newest snapshot landed.
    expect(pointer?.key).toBe(wantKeys.at(-1));
    for (const [key, body] of Object.entries(viaBoto3)) expect(JSON.parse(body), `boto3 ${key}`).toEqual(expected.get(key));

    const { committed, end } = await offsets(t);
    expect([...committed.entries()].sort()).toEqual([...end.entries()].sort());
    expect([...end.values()].reduce((n, o) => n + Number(o), 0)).toBe(records.length);

    const dead = await readTopic(t.dlqTopic);
    expect(dead.map((d) => d.key).sort()).toEqual([rogueKey, protoKey].sort());
    const byKey = new Map(dead.map((d) => [d.key, d.headers]));
    expect(byKey.get(rogueKey)?.[DLQ_HEADER.code]).toBe('SCHEMA_INCOMPATIBLE');
    expect(byKey.get(rogueKey)?.[DLQ_HEADER.message]).toBe(
      `schema id ${rogue.body.id} cannot be read as the snapshot schema: tow_and_go[].segment_id: writer "string" cannot be read as ["null","long"]`,
    );
    expect(byKey.get(protoKey)?.[DLQ_HEADER.code]).toBe('SCHEMA_INCOMPATIBLE');
    expect(byKey.get(protoKey)?.[DLQ_HEADER.message]).toBe(`schema id ${proto.body.id} is a PROTOBUF schema, not Avro`);
    expect(consumer.child.exitCode, consumer.output()).toBeNull();
  });
});
