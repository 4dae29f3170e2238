/**
 * The hot path for the common case: Avro written with the snapshot schema itself, read straight
 * into the canonical JSON body in two passes over the bytes, with no decoded object in between.
 *
 * Why: for a 50,000-link snapshot, avsc's decode, zod's parse (a fresh object per link) and the
 * body's JSON.stringify allocate about 150,000 short-lived objects; together with the structural
 * guard they cost ~25 ms of CPU and much of the GC time. Here pass 1 checks and measures, pass 2
 * writes digits into one buffer of the exact size: ~1 ms, and one allocation.
 *
 * It only ever says yes to a snapshot that the general path (avro-guard + avsc + zod's
 * snapshotSchema + objectBody) accepts, with the same bytes; test/unit/snapshot-transcoder.test.ts
 * proves the two agree over random and edge-case inputs. For everything else it returns undefined,
 * and the caller takes the general path, which names the problem. zod stays the contract; this is
 * a compiled form of it for one writer schema.
 *
 * Imports nothing at run time (only types), so a worker thread (snapshot-worker.ts) can load it
 * without zod, avsc or the registry client.
 */
import type { SnapshotLimits } from './snapshot.ts';

export interface TranscodedSnapshot {
  readonly lastModified: number;
  readonly links: number;
  /** Exactly objectBody()'s bytes for the same snapshot. */
  readonly json: Buffer;
}

const OPEN = Buffer.from('{"last_modified":');
const LINKS = Buffer.from(',"tow_and_go":[');
const LINK_ID = Buffer.from('{"link_id":');
const SEGMENT_ID = Buffer.from(',"segment_id":');
const NULL = Buffer.from('null');
const CLOSE = Buffer.from(']}');
/** A link's fixed characters: `{"link_id":` + `,"segment_id":` + `}`; plus `,` between links. */
const LINK_FIXED = LINK_ID.length + SEGMENT_ID.length + 1;
/** Union branch index 1 (long), zig-zag encoded; index 0 (null) is the byte 0. */
const BRANCH_LONG = 2;
/** Every link takes at least its link_id varint and its union index. */
const MIN_LINK_BYTES = 2;
/** Below 2^53 every zig-zag varint decodes exactly with float arithmetic. */
const MAX_EXACT = Number.MAX_SAFE_INTEGER;

/** Mutable read position, shared by the varint reader (no allocation per value). */
interface Cursor {
  pos: number;
}

/** Returns the body, or undefined when the general path must decide (invalid, odd or unusual). */
export function transcodeSnapshot(avro: Uint8Array, limits: SnapshotLimits, nowSeconds: number): TranscodedSnapshot | undefined {
  const c: Cursor = { pos: 0 };
  const lastModified = readPositiveLong(avro, c);
  if (lastModified < limits.minLastModified || lastModified > nowSeconds + limits.maxFutureSkewSeconds) return undefined;
  const afterHeader = c.pos;
  const measured = measureLinks(avro, c, limits.maxLinks);
  if (measured === undefined || c.pos !== avro.length) return undefined;
  const size = OPEN.length + digits(lastModified) + LINKS.length + measured.chars + CLOSE.length;
  const out = Buffer.allocUnsafe(size);
  let at = writeBytes(out, 0, OPEN);
  at = writeDigits(out, at, lastModified);
  at = writeBytes(out, at, LINKS);
  c.pos = afterHeader;
  at = writeLinks(avro, c, out, at);
  at = writeBytes(out, at, CLOSE);
  if (at !== size) throw new Error(`transcoder wrote ${at} of ${size} bytes`); // a bug, never input
  return { lastModified, links: measured.links, json: out };
}

/** Pass 1: checks every link and counts the body's characters for the array's contents. */
function measureLinks(avro: Uint8Array, c: Cursor, maxLinks: number): { links: number; chars: number } | undefined {
  let links = 0;
  let chars = 0;
  for (;;) {
    const count = readBlockCount(avro, c);
    if (count === undefined) return undefined;
    if (count === 0) return { links, chars: links === 0 ? 0 : chars + links - 1 };
    links += count;
    if (links > maxLinks || count * MIN_LINK_BYTES > avro.length - c.pos) return undefined;
    for (let i = 0; i < count; i++) {
      const linkId = readPositiveLong(avro, c);
      if (linkId === 0) return undefined;
      const branch = avro[c.pos++];
      let segmentChars = NULL.length;
      if (branch === BRANCH_LONG) {
        const segmentId = readPositiveLong(avro, c);
        if (segmentId === 0) return undefined;
        segmentChars = digits(segmentId);
      } else if (branch !== 0) return undefined;
      chars += LINK_FIXED + digits(linkId) + segmentChars;
    }
  }
}

/** Pass 2: the same walk over bytes already checked, writing JSON. */
function writeLinks(avro: Uint8Array, c: Cursor, out: Buffer, start: number): number {
  let at = start;
  for (let count = blockCount(avro, c); count > 0; count = blockCount(avro, c)) {
    for (let i = 0; i < count; i++) at = writeLink(avro, c, out, at, at === start);
  }
  return at;
}

function writeLink(avro: Uint8Array, c: Cursor, out: Buffer, start: number, first: boolean): number {
  let at = start;
  if (!first) out[at++] = 0x2c; // ,
  at = writeBytes(out, at, LINK_ID);
  at = writeDigits(out, at, readPositiveLong(avro, c));
  at = writeBytes(out, at, SEGMENT_ID);
  if (avro[c.pos++] === BRANCH_LONG) at = writeDigits(out, at, readPositiveLong(avro, c));
  else at = writeBytes(out, at, NULL);
  out[at] = 0x7d; // }
  return at + 1;
}

/** readBlockCount for bytes already checked: 0 at the end. */
function blockCount(avro: Uint8Array, c: Cursor): number {
  return readBlockCount(avro, c) ?? 0;
}

/** A block's item count; a negative count is followed by the block's byte size, which is skipped. */
function readBlockCount(avro: Uint8Array, c: Cursor): number | undefined {
  const raw = readZigZag(avro, c);
  if (raw < 0) return undefined;
  if (raw % 2 === 0) return raw / 2;
  const count = (raw + 1) / 2;
  return readZigZag(avro, c) < 0 ? undefined : count;
}

/**
 * A long that zod's `z.int().positive()` accepts as it is: 1 … 2^53 − 1, else 0 (which is never
 * valid here: the general path then rejects or accepts it with its own reasons).
 */
function readPositiveLong(avro: Uint8Array, c: Cursor): number {
  const raw = readZigZag(avro, c);
  if (raw <= 0 || raw % 2 === 1) return 0; // truncated, zero, or negative
  return raw / 2;
}

/** The raw (still zig-zagged) varint, or -1 when truncated, over 10 bytes, or not exact in a double. */
function readZigZag(avro: Uint8Array, c: Cursor): number {
  let result = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    const b = avro[c.pos++];
    if (b === undefined) return -1;
    result += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return result > MAX_EXACT ? -1 : result;
    multiplier *= 128;
  }
  return -1;
}

/** A byte loop: Buffer#copy's per-call checks cost more than these few bytes. */
function writeBytes(out: Buffer, at: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i] as number;
  return at + bytes.length;
}

/** Decimal digits of a non-negative safe integer, by comparison (no division). */
function digits(n: number): number {
  let d = 1;
  for (let bound = 10; n >= bound && d < 16; bound *= 10) d++;
  return d;
}

/** "00" … "99" as ASCII pairs: two digits per division. */
const PAIRS = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''), 'latin1');
const INT32_LIMIT = 2 ** 31;

/**
 * Writes a non-negative safe integer in decimal, as JSON.stringify does. Two digits per step, and
 * int32 arithmetic below 2^31 (most ids), where V8 turns the division by a constant into a
 * multiplication; float division and `%` (a runtime call on doubles) were most of this file's cost.
 */
function writeDigits(out: Buffer, at: number, n: number): number {
  const end = at + digits(n);
  let i = end;
  let x = n;
  while (x >= INT32_LIMIT) {
    const q = Math.floor(x / 100);
    const pair = (x - q * 100) * 2;
    out[--i] = PAIRS[pair + 1] as number;
    out[--i] = PAIRS[pair] as number;
    x = q;
  }
  let small = x | 0;
  while (small >= 100) {
    const q = (small / 100) | 0;
    const pair = (small - q * 100) * 2;
    out[--i] = PAIRS[pair + 1] as number;
    out[--i] = PAIRS[pair] as number;
    small = q;
  }
  if (small >= 10) {
    out[--i] = PAIRS[small * 2 + 1] as number;
    out[--i] = PAIRS[small * 2] as number;
  } else out[--i] = 0x30 + small;
  return end;
}
