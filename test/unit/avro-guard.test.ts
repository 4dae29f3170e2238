import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { AvroShapeError, assertWellFormedAvro } from '../../src/avro-guard.ts';
import { loadSnapshotSchema } from '../../src/codec.ts';
import { prng } from '../support/prng.ts';
import { thrownBy } from '../support/thrown.ts';
import { avroLong } from '../support/wire.ts';

const { type } = loadSnapshotSchema();

const VALID = {
  last_modified: 1_700_000_000,
  tow_and_go: [
    { link_id: 1, segment_id: 10 },
    { link_id: 2, segment_id: null },
    { link_id: 300_000, segment_id: 4_000_000_000 },
  ],
};

const varint = avroLong;

function shapeError(t: avro.Type, buf: Buffer): AvroShapeError {
  return thrownBy(AvroShapeError, () => assertWellFormedAvro(t, buf));
}

describe('assertWellFormedAvro on the snapshot schema', () => {
  it('accepts a valid record written by avsc', () => {
    const buf = type.toBuffer(VALID);
    expect(() => assertWellFormedAvro(type, buf)).not.toThrow();
    expect(type.fromBuffer(buf)).toEqual(VALID);
  });

  it('accepts a record with no links', () => {
    expect(() => assertWellFormedAvro(type, type.toBuffer({ last_modified: 1, tow_and_go: [] }))).not.toThrow();
  });

  it('accepts an array written in several blocks, including negative counts with a byte size', () => {
    const item = (linkId: number) => Buffer.concat([varint(BigInt(linkId)), varint(0n)]); // branch 0: null
    const buf = Buffer.concat([varint(5n), varint(2n), item(1), item(2), varint(-1n), varint(BigInt(item(3).length)), item(3), varint(0n)]);
    expect(() => assertWellFormedAvro(type, buf)).not.toThrow();
    expect(type.fromBuffer(buf).tow_and_go).toHaveLength(3);
  });

  it.each([1, 2, 5])('rejects a body truncated by %i bytes', (cut) => {
    const buf = type.toBuffer(VALID);
    expect(shapeError(type, buf.subarray(0, buf.length - cut)).message).toMatch(/truncated/);
  });

  it('rejects an empty body', () => {
    expect(shapeError(type, Buffer.alloc(0)).message).toMatch(/truncated at byte 0 reading last_modified/);
  });

  it('rejects a hostile array count of 2^40 instead of walking it', () => {
    const buf = Buffer.concat([varint(1_700_000_000n), varint(2n ** 40n), Buffer.from([2, 0, 4, 0])]);
    expect(shapeError(type, buf).message).toMatch(/array block of 1099511627776 items does not fit in the 4 remaining bytes at tow_and_go/);
  });

  it('rejects a hostile negative block count of -2^40', () => {
    const buf = Buffer.concat([varint(1n), varint(-(2n ** 40n)), varint(8n), Buffer.from([2, 0, 4, 0])]);
    expect(shapeError(type, buf).message).toMatch(/does not fit/);
  });

  it('rejects a block count that needs just one byte more than is left', () => {
    // Each link needs at least 2 bytes (link_id + union index); 3 links cannot fit in 5 bytes.
    const buf = Buffer.concat([varint(1n), varint(3n), Buffer.from([2, 0, 4, 0, 6])]);
    expect(shapeError(type, buf).message).toMatch(/does not fit/);
  });

  it.each([
    ['one', Buffer.from([0])],
    ['several', Buffer.from([1, 2, 3])],
  ])('rejects %s trailing bytes after the record', (_name, extra) => {
    const buf = Buffer.concat([type.toBuffer(VALID), extra]);
    expect(shapeError(type, buf).message).toBe(`${extra.length} trailing bytes after the record`);
  });

  it('rejects a union branch index past the branches', () => {
    const buf = Buffer.concat([varint(1n), varint(1n), varint(1n), varint(2n), varint(0n)]);
    expect(shapeError(type, buf).message).toMatch(/union branch 2 out of range at tow_and_go\[0\]\.segment_id/);
  });

  it('rejects a varint longer than 10 bytes', () => {
    const buf = Buffer.concat([Buffer.alloc(11, 0xff), Buffer.from([0, 0])]);
    expect(shapeError(type, buf).message).toMatch(/varint longer than 10 bytes/);
  });

  it('never throws anything but AvroShapeError on a few thousand pseudo-random buffers', () => {
    const rand = prng(0x5eed);
    const other: unknown[] = [];
    let accepted = 0;
    for (let i = 0; i < 4000; i++) {
      const buf = Buffer.alloc(Math.floor(rand() * 64));
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rand() * 256);
      try {
        assertWellFormedAvro(type, buf);
        accepted++;
      } catch (error) {
        if (!(error instanceof AvroShapeError)) other.push(error);
      }
    }
    expect(other).toEqual([]);
    expect(accepted).toBeLessThan(4000);
  });

  it('never throws anything but AvroShapeError on a few thousand mutations of a valid record', () => {
    const rand = prng(42);
    const base = type.toBuffer(VALID);
    const other: unknown[] = [];
    let rejected = 0;
    for (let i = 0; i < 4000; i++) {
      const buf = Buffer.from(base);
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? Math.floor(rand() * buf.length) : buf.length;
      try {
        assertWellFormedAvro(type, buf.subarray(0, cut));
      } catch (error) {
        if (error instanceof AvroShapeError) rejected++;
        else other.push(error);
      }
    }
    expect(other).toEqual([]);
    expect(rejected).toBeGreaterThan(0);
  });
});

describe('assertWellFormedAvro on other Avro types', () => {
  const record = (fields: avro.Schema[]) =>
    avro.Type.forSchema({ type: 'record', name: 'R', fields: fields.map((t, i) => ({ name: `f${i}`, type: t })) } as avro.Schema);

  const cases: [string, avro.Type, unknown][] = [
    ['boolean, float, double', record(['boolean', 'float', 'double']), { f0: true, f1: 1.5, f2: 2.25 }],
    ['string and bytes', record(['string', 'bytes']), { f0: 'héllo', f1: Buffer.from([1, 2, 3]) }],
    ['enum', record([{ type: 'enum', name: 'E', symbols: ['A', 'B', 'C'] }]), { f0: 'C' }],
    ['fixed', record([{ type: 'fixed', name: 'F', size: 4 }]), { f0: Buffer.from([9, 9, 9, 9]) }],
    ['map of long', record([{ type: 'map', values: 'long' }]), { f0: { a: 1, bb: 2 } }],
    ['array of null', record([{ type: 'array', items: 'null' }]), { f0: [null, null, null] }],
    ['logical date', record([{ type: 'int', logicalType: 'date' }]), { f0: 19_000 }],
  ];

  it.each(cases)('accepts a valid %s record', (_name, t, value) => {
    expect(() => assertWellFormedAvro(t, t.toBuffer(value))).not.toThrow();
  });

  it.each(cases)('rejects a truncated %s record', (_name, t, value) => {
    const buf = t.toBuffer(value);
    expect(() => assertWellFormedAvro(t, buf.subarray(0, buf.length - 1))).toThrow(AvroShapeError);
  });

  it('rejects an enum index out of range', () => {
    const t = record([{ type: 'enum', name: 'E', symbols: ['A', 'B'] }]);
    expect(shapeError(t, varint(2n)).message).toMatch(/enum index 2 out of range at f0/);
  });

  it('rejects a negative string length', () => {
    const t = record(['string']);
    expect(shapeError(t, varint(-3n)).message).toMatch(/negative length at f0/);
  });

  it('rejects a map block count that the remaining bytes cannot hold', () => {
    const t = record([{ type: 'map', values: 'long' }]);
    // Each entry needs a key length and a value: 2 entries cannot fit in 3 bytes.
    expect(shapeError(t, Buffer.concat([varint(2n), Buffer.from([0, 2, 0])])).message).toMatch(/map block of 2 items/);
  });

  it('caps arrays of zero-size items by count', () => {
    const t = record([{ type: 'array', items: 'null' }]);
    expect(() => assertWellFormedAvro(t, Buffer.concat([varint(1_000_000n), varint(0n)]))).not.toThrow();
    expect(shapeError(t, Buffer.concat([varint(1_000_001n), varint(0n)])).message).toMatch(/does not fit/);
    expect(shapeError(t, Buffer.concat([varint(600_000n), varint(600_000n), varint(0n)])).message).toMatch(/does not fit/);
  });
});
