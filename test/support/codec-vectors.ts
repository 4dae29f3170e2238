/**
 * Record batches compressed by clients we did not write, captured once from the local broker's log
 * (test/support/capture-codec-vectors.ts) into codec-vectors.json. Each batch holds the same three
 * records; the values are big enough to span several Snappy (32 KiB) and LZ4 (64 KiB) blocks.
 */
import { readFileSync } from 'node:fs';

export interface CodecVector {
  /** Who compressed the batch, with its version. */
  readonly producer: string;
  readonly codec: 'gzip' | 'snappy' | 'lz4' | 'zstd';
  /** The whole record batch as the broker stored it, base64. */
  readonly batch: string;
}

export const VECTORS_PATH = new URL('./codec-vectors.json', import.meta.url);

/** The records in every vector: key `k<i>`, value about 47 KiB of text that differs per record and per KiB. */
export function vectorRecords(): Array<{ key: string; value: Buffer }> {
  return [0, 1, 2].map((i) => ({
    key: `k${i}`,
    value: Buffer.from(Array.from({ length: 48 }, (_, n) => `${i}:${n}:${'tow-and-go '.repeat(90)}`).join('')),
  }));
}

export function loadVectors(): CodecVector[] {
  return (JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as { vectors: CodecVector[] }).vectors;
}
