/**
 * Reads the local broker's log segments, to see what a producer really wrote: each record batch's
 * compression codec and control flag, and its raw bytes (for fixtures and for corrupting one on
 * purpose). Only for topics a test created; the stack keeps one broker with one log dir.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { ROOT } from './paths.ts';

export const LOG_DIR = `${ROOT}.stack/kafka/data`;

/** Kafka's codec ids in a record batch's attributes (bits 0-2). */
export const CODEC_IDS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;

export interface RawBatch {
  readonly baseOffset: bigint;
  readonly lastOffset: bigint;
  readonly codec: number;
  readonly transactional: boolean;
  readonly control: boolean;
  /** The whole batch as stored: base offset, length, header and records. */
  readonly bytes: Buffer;
  /** Where the (possibly compressed) records start within the segment file. */
  readonly recordsPosition: number;
  readonly segment: string;
}

/** Record batch v2 layout: the fixed header is 61 bytes, the record count its last 4. */
const HEADER_BYTES = 61;

/** Every record batch of one partition, in offset order, from every segment file. */
export function readBatches(topic: string, partition: number): RawBatch[] {
  const dir = `${LOG_DIR}/${topic}-${partition}`;
  const segments = readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort();
  return segments.flatMap((name) => parseSegment(readFileSync(`${dir}/${name}`), `${dir}/${name}`));
}

export function parseSegment(file: Buffer, segment = '(buffer)'): RawBatch[] {
  const batches: RawBatch[] = [];
  let at = 0;
  while (at + 12 <= file.length) {
    const baseOffset = file.readBigInt64BE(at);
    const length = file.readInt32BE(at + 8);
    const end = at + 12 + length;
    // A segment is preallocated on some platforms; a zero length is the end of its data.
    if (length <= 0 || end > file.length) break;
    const magic = file.readInt8(at + 16);
    if (magic !== 2) throw new Error(`${segment}: batch at byte ${at} has magic ${magic}, expected 2`);
    const attributes = file.readInt16BE(at + 21);
    const lastOffsetDelta = file.readInt32BE(at + 23);
    batches.push({
      baseOffset,
      lastOffset: baseOffset + BigInt(lastOffsetDelta),
      codec: attributes & 0x07,
      transactional: (attributes & 0x10) !== 0,
      control: (attributes & 0x20) !== 0,
      bytes: file.subarray(at, end),
      recordsPosition: at + HEADER_BYTES,
      segment,
    });
    at = end;
  }
  return batches;
}

/** The codecs of a partition's data batches (control batches, i.e. transaction markers, left out). */
export function dataBatchCodecs(topic: string, partition: number): number[] {
  return readBatches(topic, partition)
    .filter((b) => !b.control)
    .map((b) => b.codec);
}
