/**
 * A bounded structural check of Avro binary, run before avsc decodes it.
 *
 * Why: avsc trusts array and map block counts. Hostile bytes that claim an array of 2^40 items make
 * it loop reading past the end of the buffer (avsc reads missing bytes as zeros and only checks the
 * position at the end), which blocks the event loop long enough to miss heartbeats and can exhaust
 * memory. This walk allocates nothing per item and rejects any block count that the remaining bytes
 * cannot hold, so its cost, and the decode after it, is bounded by the payload size.
 *
 * The checker is compiled once per writer schema into a tree of closures (no per-item type switch),
 * because a generic walk cost more than the decode itself on 50,000-link snapshots.
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

/**
 * Where the walk is, as field names and array indexes. Kept as a stack and turned into text only
 * when an error is thrown.
 */
type Trail = (string | number)[];
interface Cursor {
  pos: number;
}
type Check = (buf: Uint8Array, c: Cursor, path: Trail) => void;

const compiled = new WeakMap<object, Check>();

export function assertWellFormedAvro(type: Type, buf: Uint8Array): void {
  const key = type as unknown as WalkType;
  let check = compiled.get(key);
  if (check === undefined) {
    check = compile(key, new Map());
    compiled.set(key, check);
  }
  const cursor = { pos: 0 };
  check(buf, cursor, []);
  if (cursor.pos !== buf.length) {
    throw new AvroShapeError(`${buf.length - cursor.pos} trailing bytes after the record`);
  }
}

function where(trail: Trail): string {
  if (trail.length === 0) return '(root)';
  return trail.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

const skipNothing: Check = () => undefined;
const skipVarint: Check = (buf, c, path) => {
  readVarLong(buf, c, path);
};
const fixedSize =
  (n: number): Check =>
  (buf, c, path) => {
    need(buf, c, n, path);
    c.pos += n;
  };
const skipLengthPrefixed: Check = (buf, c, path) => {
  const len = readVarLong(buf, c, path);
  if (len < 0) throw new AvroShapeError(`negative length at ${where(path)}`);
  need(buf, c, len, path);
  c.pos += len;
};

/** `seen` ties recursive named types to their (lazily filled) checker. */
function compile(t: WalkType, seen: Map<WalkType, Check>): Check {
  const type = t.underlyingType ?? t;
  const known = seen.get(type);
  if (known !== undefined) return known;
  const name = type.typeName;
  switch (name) {
    case 'null':
      return skipNothing;
    case 'boolean':
      return fixedSize(1);
    case 'int':
    case 'long':
      return skipVarint;
    case 'float':
      return fixedSize(4);
    case 'double':
      return fixedSize(8);
    case 'string':
    case 'bytes':
      return skipLengthPrefixed;
    case 'fixed':
      return fixedSize(type.size ?? 0);
    case 'enum': {
      const symbols = type.symbols?.length ?? 0;
      return (buf, c, path) => {
        const index = readVarLong(buf, c, path);
        if (index < 0 || index >= symbols) throw new AvroShapeError(`enum index ${index} out of range at ${where(path)}`);
      };
    }
    case 'record':
    case 'error': {
      let fields: Array<{ name: string; check: Check }> = [];
      const check: Check = (buf, c, path) => {
        for (const f of fields) {
          path.push(f.name);
          f.check(buf, c, path);
          path.pop();
        }
      };
      seen.set(type, check);
      fields = (type.fields ?? []).map((f) => ({ name: f.name, check: compile(f.type, seen) }));
      return check;
    }
    case 'array':
    case 'map':
      return compileBlocks(type, name, seen);
    default:
      if (name.startsWith('union')) {
        const branches = (type.types ?? []).map((b) => compile(b, seen));
        return (buf, c, path) => {
          const index = readVarLong(buf, c, path);
          const branch = branches[index];
          if (branch === undefined) throw new AvroShapeError(`union branch ${index} out of range at ${where(path)}`);
          branch(buf, c, path);
        };
      }
      throw new AvroShapeError(`unsupported Avro type ${name}`);
  }
}

function compileBlocks(type: WalkType, name: 'array' | 'map', seen: Map<WalkType, Check>): Check {
  const itemType = name === 'array' ? type.itemsType : type.valuesType;
  if (itemType === undefined) throw new AvroShapeError(`malformed ${name} type`);
  const item = compile(itemType, seen);
  const isMap = name === 'map';
  const minItemBytes = minEncodedSize(itemType, new Set()) + (isMap ? 1 : 0);
  return (buf, c, path) => {
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
        throw new AvroShapeError(`${name} block of ${count} items does not fit in the ${remaining} remaining bytes at ${where(path)}`);
      }
      const first = total - count;
      path.push(first);
      const slot = path.length - 1;
      for (let i = 0; i < count; i++) {
        path[slot] = first + i;
        if (isMap) skipLengthPrefixed(buf, c, path);
        item(buf, c, path);
      }
      path.pop();
    }
  };
}

/** Fewest bytes a value of this type can encode to. */
function minEncodedSize(t: WalkType, visiting: Set<WalkType>): number {
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
    case 'error': {
      // A recursive record can always stop recursing (through a union or an empty array).
      if (visiting.has(type)) return 0;
      visiting.add(type);
      const size = (type.fields ?? []).reduce((sum, f) => sum + minEncodedSize(f.type, visiting), 0);
      visiting.delete(type);
      return size;
    }
    default:
      return 1; // every varint, length prefix, union index and block terminator is at least one byte
  }
}

function need(buf: Uint8Array, c: Cursor, n: number, path: Trail): void {
  if (c.pos + n > buf.length) throw new AvroShapeError(`truncated at byte ${c.pos} reading ${where(path)}`);
}

/** Zig-zag varint, up to 10 bytes; returns a JS number (exact up to 2^53). */
function readVarLong(buf: Uint8Array, c: Cursor, path: Trail): number {
  let result = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[c.pos];
    if (b === undefined) throw new AvroShapeError(`truncated at byte ${c.pos} reading ${where(path)}`);
    c.pos += 1;
    result += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    multiplier *= 128;
  }
  throw new AvroShapeError(`varint longer than 10 bytes at byte ${c.pos} reading ${where(path)}`);
}
