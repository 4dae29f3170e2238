/**
 * A bounded structural check of Avro binary, run before avsc decodes it.
 *
 * Why: avsc trusts array and map block counts. Hostile bytes that claim an array of 2^40 items make
 * it loop reading past the end of the buffer (avsc reads missing bytes as zeros and only checks the
 * position at the end), which blocks the event loop long enough to miss heartbeats and can exhaust
 * memory. This walk allocates nothing and rejects any block count that the remaining bytes cannot
 * hold, so its cost, and the decode after it, is bounded by the payload size.
 */
import type { Type } from 'avsc';

export class AvroShapeError extends Error {}

/** The parts of avsc's Type that the walk needs (avsc's typings declare them loosely). */
interface WalkType {
  readonly typeName: string;
  readonly fields?: ReadonlyArray<{ readonly name: string; readonly type: WalkType }>;
  readonly itemsType?: WalkType;
  readonly valuesType?: WalkType;
  readonly types?: readonly WalkType[];
  readonly symbols?: readonly string[];
  readonly size?: number;
  readonly underlyingType?: WalkType;
}

/** Items of zero encoded size (null, empty records) are capped by count instead of by bytes. */
const MAX_ZERO_SIZE_ITEMS = 1_000_000;

export function assertWellFormedAvro(type: Type, buf: Uint8Array): void {
  const cursor = { pos: 0 };
  walk(type as unknown as WalkType, buf, cursor, '');
  if (cursor.pos !== buf.length) {
    throw new AvroShapeError(`${buf.length - cursor.pos} trailing bytes after the record`);
  }
}

function walk(t: WalkType, buf: Uint8Array, c: { pos: number }, path: string): void {
  const name = t.underlyingType === undefined ? t.typeName : t.underlyingType.typeName;
  const type = t.underlyingType ?? t;
  switch (name) {
    case 'null':
      return;
    case 'boolean':
      need(buf, c, 1, path);
      c.pos += 1;
      return;
    case 'int':
    case 'long':
      readVarLong(buf, c, path);
      return;
    case 'float':
      need(buf, c, 4, path);
      c.pos += 4;
      return;
    case 'double':
      need(buf, c, 8, path);
      c.pos += 8;
      return;
    case 'string':
    case 'bytes': {
      const len = readVarLong(buf, c, path);
      if (len < 0) throw new AvroShapeError(`negative length at ${path || '(root)'}`);
      need(buf, c, len, path);
      c.pos += len;
      return;
    }
    case 'fixed':
      need(buf, c, type.size ?? 0, path);
      c.pos += type.size ?? 0;
      return;
    case 'enum': {
      const index = readVarLong(buf, c, path);
      if (index < 0 || index >= (type.symbols?.length ?? 0)) throw new AvroShapeError(`enum index ${index} out of range at ${path || '(root)'}`);
      return;
    }
    case 'record':
    case 'error':
      for (const field of type.fields ?? []) walk(field.type, buf, c, path === '' ? field.name : `${path}.${field.name}`);
      return;
    case 'array':
    case 'map':
      walkBlocks(type, name, buf, c, path);
      return;
    default:
      if (name.startsWith('union')) {
        const branches = type.types ?? [];
        const index = readVarLong(buf, c, path);
        const branch = branches[index];
        if (branch === undefined) throw new AvroShapeError(`union branch ${index} out of range at ${path || '(root)'}`);
        walk(branch, buf, c, path);
        return;
      }
      throw new AvroShapeError(`unsupported Avro type ${name} at ${path || '(root)'}`);
  }
}

function walkBlocks(type: WalkType, name: string, buf: Uint8Array, c: { pos: number }, path: string): void {
  const item = name === 'array' ? type.itemsType : type.valuesType;
  if (item === undefined) throw new AvroShapeError(`malformed ${name} type at ${path}`);
  const minItemBytes = minEncodedSize(item) + (name === 'map' ? 1 : 0);
  let total = 0;
  for (;;) {
    let count = readVarLong(buf, c, path);
    if (count === 0) return;
    if (count < 0) {
      count = -count;
      readVarLong(buf, c, path); // block size in bytes, informational
    }
    total += count;
    const remaining = buf.length - c.pos;
    if ((minItemBytes > 0 && count * minItemBytes > remaining) || (minItemBytes === 0 && total > MAX_ZERO_SIZE_ITEMS)) {
      throw new AvroShapeError(`${name} block of ${count} items does not fit in the ${remaining} remaining bytes at ${path || '(root)'}`);
    }
    for (let i = 0; i < count; i++) {
      if (name === 'map') walk({ typeName: 'string' }, buf, c, path);
      walk(item, buf, c, `${path}[${total - count + i}]`);
    }
  }
}

/** Fewest bytes a value of this type can encode to. */
function minEncodedSize(t: WalkType): number {
  const type = t.underlyingType ?? t;
  switch (type.typeName) {
    case 'null':
      return 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    case 'fixed':
      return type.size ?? 0;
    case 'record':
    case 'error':
      return (type.fields ?? []).reduce((sum, f) => sum + minEncodedSize(f.type), 0);
    default:
      return 1; // every varint, length prefix, union index and block terminator is at least one byte
  }
}

function need(buf: Uint8Array, c: { pos: number }, n: number, path: string): void {
  if (c.pos + n > buf.length) throw new AvroShapeError(`truncated at byte ${c.pos} reading ${path || '(root)'}`);
}

/** Zig-zag varint, up to 10 bytes; returns a JS number (exact up to 2^53). */
function readVarLong(buf: Uint8Array, c: { pos: number }, path: string): number {
  let result = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[c.pos];
    if (b === undefined) throw new AvroShapeError(`truncated at byte ${c.pos} reading ${path || '(root)'}`);
    c.pos += 1;
    result += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    multiplier *= 128;
  }
  throw new AvroShapeError(`varint longer than 10 bytes at byte ${c.pos} reading ${path || '(root)'}`);
}
