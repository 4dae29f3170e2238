import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { loadSnapshotSchema } from '../../src/codec.ts';
import { resolveWriter, SchemaResolutionError } from '../../src/schema-resolution.ts';
import { thrownBy } from '../support/thrown.ts';

type Json = Record<string, unknown>;
const snapshot = loadSnapshotSchema();
const READER = JSON.parse(snapshot.raw) as Json;

/** The snapshot schema as another producer might write it; parts are replaced by the options. */
function snapshotWriter(o: { ns?: string | undefined; name?: string; aliases?: string[]; fields?: unknown[]; link?: Json } = {}): Json {
  return {
    type: 'record',
    name: o.name ?? 'TowAndGoSnapshot',
    ...(o.ns === undefined ? {} : { namespace: o.ns }),
    ...(o.aliases === undefined ? {} : { aliases: o.aliases }),
    fields: o.fields ?? [
      { name: 'last_modified', type: 'long' },
      { name: 'tow_and_go', type: { type: 'array', items: o.link ?? link() } },
    ],
  };
}

function link(o: { name?: string; aliases?: string[]; fields?: unknown[] } = {}): Json {
  return {
    type: 'record',
    name: o.name ?? 'TowAndGoLink',
    ...(o.aliases === undefined ? {} : { aliases: o.aliases }),
    fields: o.fields ?? [
      { name: 'link_id', type: 'long' },
      { name: 'segment_id', type: ['null', 'long'], default: null },
    ],
  };
}

const LINK_ID = { name: 'link_id', type: 'long' };
const SEGMENT_ID = { name: 'segment_id', type: ['null', 'long'], default: null };
const ONE = { last_modified: 1_684_216_515, tow_and_go: [{ link_id: 17_806_054, segment_id: 457_160_414 }] };

/** Writes `value` with the writer schema and reads it back with the reader schema, through the resolution. */
function roundTrip(reader: unknown, writer: unknown, value: unknown): unknown {
  const writerType = avro.Type.forSchema(writer as avro.Schema);
  const { reader: readerType, resolver } = resolveWriter(avro.Type.forSchema(reader as avro.Schema), writerType);
  return JSON.parse(
    JSON.stringify(readerType.fromBuffer(writerType.toBuffer(value), resolver, true), (_k, v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v)),
  );
}

function refusal(reader: unknown, writer: unknown): SchemaResolutionError {
  return thrownBy(SchemaResolutionError, () => resolveWriter(avro.Type.forSchema(reader as avro.Schema), avro.Type.forSchema(writer as avro.Schema)));
}

describe('resolveWriter: writers the snapshot schema reads', () => {
  it.each<[string, Json, unknown, unknown]>([
    ['the same records in another namespace', snapshotWriter({ ns: 'org.example.feed' }), ONE, ONE],
    ['the same records in the null namespace', snapshotWriter(), ONE, ONE],
    ['a nested record in its own namespace', snapshotWriter({ ns: 'a.b', link: { ...link(), namespace: 'c.d' } }), ONE, ONE],
    [
      'segment_id as ["long","null"] (union branches in the other order)',
      snapshotWriter({ link: link({ fields: [LINK_ID, { name: 'segment_id', type: ['long', 'null'] }] }) }),
      {
        last_modified: 1,
        tow_and_go: [
          { link_id: 1, segment_id: 5 },
          { link_id: 2, segment_id: null },
        ],
      },
      {
        last_modified: 1,
        tow_and_go: [
          { link_id: 1, segment_id: 5 },
          { link_id: 2, segment_id: null },
        ],
      },
    ],
    [
      'segment_id as a plain long, read into the reader union',
      snapshotWriter({ link: link({ fields: [LINK_ID, { name: 'segment_id', type: 'long' }] }) }),
      ONE,
      ONE,
    ],
    [
      'segment_id as ["int","null"]: promotion inside a union',
      snapshotWriter({ link: link({ fields: [LINK_ID, { name: 'segment_id', type: ['int', 'null'] }] }) }),
      { last_modified: 1, tow_and_go: [{ link_id: 1, segment_id: 7 }] },
      { last_modified: 1, tow_and_go: [{ link_id: 1, segment_id: 7 }] },
    ],
    ['link_id as int (int → long)', snapshotWriter({ link: link({ fields: [{ name: 'link_id', type: 'int' }, SEGMENT_ID] }) }), ONE, ONE],
    [
      'an added field with a default, which is dropped',
      snapshotWriter({
        fields: [
          { name: 'last_modified', type: 'long' },
          { name: 'source', type: 'string', default: 'feed' },
          { name: 'tow_and_go', type: { type: 'array', items: link() } },
        ],
      }),
      { ...ONE, source: 'feed-b' },
      ONE,
    ],
    [
      'an added field in the nested record',
      snapshotWriter({ link: link({ fields: [LINK_ID, SEGMENT_ID, { name: 'speed', type: ['null', 'double'], default: null }] }) }),
      { last_modified: 1, tow_and_go: [{ link_id: 1, segment_id: null, speed: 3.5 }] },
      { last_modified: 1, tow_and_go: [{ link_id: 1, segment_id: null }] },
    ],
    [
      'a removed optional field, which takes its default (null)',
      snapshotWriter({ link: link({ fields: [LINK_ID] }) }),
      { last_modified: 1, tow_and_go: [{ link_id: 9 }] },
      { last_modified: 1, tow_and_go: [{ link_id: 9, segment_id: null }] },
    ],
    [
      'fields in another order',
      snapshotWriter({
        fields: [
          { name: 'tow_and_go', type: { type: 'array', items: link({ fields: [SEGMENT_ID, LINK_ID] }) } },
          { name: 'last_modified', type: 'long' },
        ],
      }),
      ONE,
      ONE,
    ],
    [
      'renamed records that keep the old names as (qualified) writer aliases',
      snapshotWriter({
        ns: 'org.example.feed',
        name: 'Snapshot',
        aliases: ['com.towandgo.traffic.TowAndGoSnapshot'],
        link: link({ name: 'Link', aliases: ['com.towandgo.traffic.TowAndGoLink'] }),
      }),
      ONE,
      ONE,
    ],
    [
      'renamed records with unqualified writer aliases',
      snapshotWriter({ ns: 'org.example.feed', name: 'Snapshot', aliases: ['TowAndGoSnapshot'], link: link({ name: 'Link', aliases: ['TowAndGoLink'] }) }),
      ONE,
      ONE,
    ],
    [
      'a renamed field that keeps the old name as a writer alias',
      snapshotWriter({ link: link({ fields: [{ name: 'linkId', type: 'long', aliases: ['link_id'] }, SEGMENT_ID] }) }),
      { last_modified: 1, tow_and_go: [{ linkId: 4, segment_id: null }] },
      { last_modified: 1, tow_and_go: [{ link_id: 4, segment_id: null }] },
    ],
  ])('reads %s', (_what, writer, written, expected) => {
    expect(roundTrip(READER, writer, written)).toEqual(expected);
  });

  it('uses the reader schema itself when no alias is needed, and a copy when one is', () => {
    const reader = avro.Type.forSchema(READER as avro.Schema);
    const sameNames = resolveWriter(
      reader,
      avro.Type.forSchema(snapshotWriter({ ns: 'com.towandgo.traffic', link: link({ fields: [LINK_ID] }) }) as avro.Schema),
    );
    expect(sameNames.reader).toBe(reader);
    const otherNamespace = resolveWriter(reader, avro.Type.forSchema(snapshotWriter({ ns: 'org.example.feed' }) as avro.Schema));
    expect(otherNamespace.reader).not.toBe(reader);
    expect(otherNamespace.reader.name).toBe('com.towandgo.traffic.TowAndGoSnapshot');
    expect(otherNamespace.reader.aliases).toEqual(['org.example.feed.TowAndGoSnapshot']);
    // The reader schema the service was given is left as it was.
    expect(reader.aliases).toEqual([]);
  });
});

describe('resolveWriter: the general rules (Java SchemaCompatibility), on small schemas', () => {
  const record = (name: string, fields: unknown[], extra: Json = {}) => ({ type: 'record', name, fields, ...extra });
  it.each<[string, unknown, unknown, unknown, unknown]>([
    [
      'a reader alias naming the writer (qualified)',
      record('New', [{ name: 'a', type: 'int' }], { namespace: 'n', aliases: ['old.Old'] }),
      record('Old', [{ name: 'a', type: 'int' }], { namespace: 'old' }),
      { a: 1 },
      { a: 1 },
    ],
    [
      'a reader alias naming the writer (unqualified)',
      record('New', [{ name: 'a', type: 'int' }], { namespace: 'n', aliases: ['Old'] }),
      record('Old', [{ name: 'a', type: 'int' }], { namespace: 'x.y' }),
      { a: 1 },
      { a: 1 },
    ],
    ['a reader field alias', record('R', [{ name: 'b', type: 'int', aliases: ['a'] }]), record('R', [{ name: 'a', type: 'int' }]), { a: 3 }, { b: 3 }],
    [
      'a reader field without a writer field, from its default',
      record('R', [
        { name: 'a', type: 'int' },
        { name: 'b', type: 'string', default: 'x' },
      ]),
      record('R', [{ name: 'a', type: 'int' }]),
      { a: 1 },
      { a: 1, b: 'x' },
    ],
    ['int as float', 'float', 'int', 3, 3],
    ['int as double', 'double', 'int', 3, 3],
    ['long as float', 'float', 'long', 4, 4],
    ['long as double', 'double', 'long', 4, 4],
    ['float as double', 'double', 'float', 0.5, 0.5],
    ['string as bytes', 'bytes', 'string', 'hi', 'hi'],
    ['bytes as string', 'string', 'bytes', Buffer.from('hi'), 'hi'],
    ['map values with a promotion', { type: 'map', values: 'long' }, { type: 'map', values: 'int' }, { k: 1 }, { k: 1 }],
    ['a writer union whose every branch the reader union reads', ['null', 'string', 'long'], ['int', 'string'], { string: 'x' }, 'x'],
    [
      'an enum whose writer symbols the reader has',
      { type: 'enum', name: 'E', namespace: 'r', symbols: ['A', 'B', 'C'] },
      { type: 'enum', name: 'E', namespace: 'w', symbols: ['B', 'A'] },
      'B',
      'B',
    ],
    [
      'an enum with an unknown symbol, read as the reader default',
      { type: 'enum', name: 'E', symbols: ['A', 'Z'], default: 'Z' },
      { type: 'enum', name: 'E', symbols: ['A', 'B'] },
      'B',
      'Z',
    ],
    [
      'a fixed in another namespace',
      { type: 'fixed', name: 'F', namespace: 'r', size: 2 },
      { type: 'fixed', name: 'F', namespace: 'w', size: 2 },
      Buffer.from('ab'),
      'ab',
    ],
    [
      'a reader union branch that is a record matched by unqualified name',
      ['null', record('R', [{ name: 'a', type: 'int' }], { namespace: 'r' })],
      record('R', [{ name: 'a', type: 'int' }], { namespace: 'w' }),
      { a: 1 },
      { a: 1 },
    ],
    [
      'a recursive record in another namespace',
      record(
        'Node',
        [
          { name: 'v', type: 'int' },
          { name: 'next', type: ['null', 'Node'], default: null },
        ],
        { namespace: 'r' },
      ),
      record(
        'Node',
        [
          { name: 'v', type: 'int' },
          { name: 'next', type: ['null', 'Node'] },
        ],
        { namespace: 'w' },
      ),
      { v: 1, next: { 'w.Node': { v: 2, next: null } } },
      { v: 1, next: { v: 2, next: null } },
    ],
  ])('reads %s', (_what, reader, writer, written, expected) => {
    const w = avro.Type.forSchema(writer as avro.Schema, { wrapUnions: true });
    const r = avro.Type.forSchema(reader as avro.Schema);
    const resolution = resolveWriter(r, w);
    const read = resolution.reader.fromBuffer(w.toBuffer(written), resolution.resolver, true);
    expect(JSON.parse(JSON.stringify(read, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('utf8') : v)))).toEqual(expected);
  });
});

describe('resolveWriter: writers it refuses, naming the first place that fails', () => {
  const record = (name: string, fields: unknown[], extra: Json = {}) => ({ type: 'record', name, fields, ...extra });
  it.each<[string, unknown, unknown, string]>([
    [
      'segment_id as string',
      READER,
      snapshotWriter({ link: link({ fields: [LINK_ID, { name: 'segment_id', type: 'string' }] }) }),
      'tow_and_go[].segment_id: writer "string" cannot be read as ["null","long"]',
    ],
    [
      'segment_id as ["string","null"]: one writer branch the reader cannot read',
      READER,
      snapshotWriter({ link: link({ fields: [LINK_ID, { name: 'segment_id', type: ['string', 'null'] }] }) }),
      'tow_and_go[].segment_id: writer "string" cannot be read as ["null","long"]',
    ],
    [
      'link_id missing (the reader field has no default)',
      READER,
      snapshotWriter({ ns: 'x', link: link({ fields: [SEGMENT_ID] }) }),
      'tow_and_go[].link_id: writer record "x.TowAndGoLink" has no such field and the reader field has no default',
    ],
    [
      'last_modified as double (no demotion)',
      READER,
      snapshotWriter({
        fields: [
          { name: 'last_modified', type: 'double' },
          { name: 'tow_and_go', type: { type: 'array', items: link() } },
        ],
      }),
      'last_modified: writer "double" cannot be read as "long"',
    ],
    [
      'tow_and_go as a map',
      READER,
      snapshotWriter({
        fields: [
          { name: 'last_modified', type: 'long' },
          { name: 'tow_and_go', type: { type: 'map', values: link() } },
        ],
      }),
      'tow_and_go: writer {"type":"map","values":"TowAndGoLink"} cannot be read as {"type":"array","items":"com.towandgo.traffic.TowAndGoLink"}',
    ],
    [
      'a renamed top-level record without aliases',
      READER,
      snapshotWriter({ ns: 'x', name: 'Snapshot' }),
      '(root): writer record "x.Snapshot" cannot be read as "com.towandgo.traffic.TowAndGoSnapshot": no name or alias matches',
    ],
    [
      'a renamed nested record whose aliases name something else',
      READER,
      snapshotWriter({ link: link({ name: 'Link', aliases: ['Road'] }) }),
      'tow_and_go[]: writer record "Link" cannot be read as "com.towandgo.traffic.TowAndGoLink": no name or alias matches',
    ],
    ['a bare string', READER, 'string', '(root): writer "string" cannot be read as "com.towandgo.traffic.TowAndGoSnapshot"'],
    ['long as int', 'int', 'long', '(root): writer "long" cannot be read as "int"'],
    ['double as float', 'float', 'double', '(root): writer "double" cannot be read as "float"'],
    ['string as long', 'long', 'string', '(root): writer "string" cannot be read as "long"'],
    [
      'an enum symbol the reader lacks, with no reader default',
      { type: 'enum', name: 'E', symbols: ['A'] },
      { type: 'enum', name: 'E', symbols: ['A', 'B'] },
      '(root): writer enum "E" has symbols ["B"] that the reader lacks, and the reader enum has no default',
    ],
    [
      'fixed of another size',
      { type: 'fixed', name: 'F', size: 2 },
      { type: 'fixed', name: 'F', size: 3 },
      '(root): writer fixed "F" has size 3, the reader\'s has 2',
    ],
    [
      'a reader field matching two writer fields (name and alias)',
      record('R', [{ name: 'a', type: 'int', aliases: ['b'] }]),
      record('R', [
        { name: 'a', type: 'int' },
        { name: 'b', type: 'int' },
      ]),
      'a: matches more than one writer field: "a", "b"',
    ],
    ['map values that do not promote', { type: 'map', values: 'int' }, { type: 'map', values: 'long' }, '{}: writer "long" cannot be read as "int"'],
  ])('refuses %s', (_what, reader, writer, message) => {
    const error = refusal(reader, writer);
    expect(error.message).toBe(message);
    expect(message.startsWith(`${error.path}: `)).toBe(true);
  });
});
