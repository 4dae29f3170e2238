import { createRequire } from 'node:module';
import kafkajs, { CompressionTypes } from 'kafkajs';
import * as snappy from 'snappy';
import { describe, expect, it } from 'vitest';
import {
  CODECS,
  type CompressionName,
  DecompressionError,
  kafkaJsCodec,
  parseCompression,
  registerCompressionCodecs,
  XERIAL_BLOCK_BYTES,
} from '../../src/compression.ts';
import { InputError } from '../../src/errors.ts';
import { loadVectors, vectorRecords } from '../support/codec-vectors.ts';
import { thrownBy } from '../support/thrown.ts';

const { CompressionCodecs } = kafkajs;

/** kafkajs' own record-batch encoder and decoder, so codecs are tested through the code that calls them. */
const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown;
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (
  decoder: unknown,
) => Promise<{ records: Array<{ key: Buffer | null; value: Buffer | null }> }>;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch(options: { compression: number; records: unknown[] }): Promise<{ buffer: Buffer }>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: { key: Buffer; value: Buffer; headers: object }) => unknown;

registerCompressionCodecs();

const NAMES = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
const MAGIC: Record<(typeof NAMES)[number], string> = { gzip: '1f8b', snappy: '82534e4150505900', lz4: '04224d18', zstd: '28b52ffd' };

/** Text that compresses well but not trivially, `n` bytes long. */
function text(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 1) out[i] = 97 + ((i * 7 + Math.floor(i / 1000)) % 26);
  return out;
}

async function decodeRecords(batch: Buffer): Promise<Array<{ key: string; value: Buffer }>> {
  const { records } = await decodeBatch(new Decoder(batch));
  return records.map((r) => ({ key: r.key?.toString('utf8') ?? '', value: r.value ?? Buffer.alloc(0) }));
}

describe('codecs', () => {
  it.each(NAMES.flatMap((name) => [0, 1, 100_000].map((size) => [name, size] as const)))('%s round-trips %i bytes', async (name, size) => {
    const data = text(size);
    const compressed = await CODECS[name].compress(data);
    expect(compressed.subarray(0, MAGIC[name].length / 2).toString('hex')).toBe(MAGIC[name]);
    expect((await CODECS[name].decompress(compressed)).equals(data)).toBe(true);
  });

  it('writes Snappy as snappy-java does: xerial header v1/1, then one length-prefixed raw block per 32 KiB', async () => {
    const data = text(2 * XERIAL_BLOCK_BYTES + 5);
    const out = await CODECS.snappy.compress(data);
    expect(out.readInt32BE(8)).toBe(1);
    expect(out.readInt32BE(12)).toBe(1);
    const blocks: Buffer[] = [];
    for (let at = 16; at < out.length; ) {
      const length = out.readInt32BE(at);
      blocks.push(snappy.uncompressSync(out.subarray(at + 4, at + 4 + length), { asBuffer: true }) as Buffer);
      at += 4 + length;
    }
    expect(blocks.map((b) => b.length)).toEqual([XERIAL_BLOCK_BYTES, XERIAL_BLOCK_BYTES, 5]);
    expect(Buffer.concat(blocks).equals(data)).toBe(true);
  });

  it('reads raw Snappy (one block, no framing), as librdkafka writes it', async () => {
    const data = text(70_000);
    expect((await CODECS.snappy.decompress(await snappy.compress(data))).equals(data)).toBe(true);
  });

  it('writes LZ4 as a standard frame with independent 64 KiB blocks, which Kafka requires', async () => {
    const out = await CODECS.lz4.compress(text(10));
    const flg = out.readUInt8(4);
    expect(flg >> 6).toBe(1); // frame format version 01
    expect(flg & 0x20).toBe(0x20); // block independence
    expect(out.readUInt8(5)).toBe(0x40); // BD: 64 KiB maximum block size
  });
});

describe('batches compressed by other clients (fixed vectors)', () => {
  const vectors = loadVectors();

  it('covers every codec from both Kafka Java client and librdkafka, including both Snappy framings', () => {
    expect(vectors.map((v) => `${v.codec} ${v.producer.split(' ')[0]}`).sort()).toEqual(NAMES.flatMap((n) => [`${n} Kafka`, `${n} librdkafka`]).sort());
    const snappyHeads = vectors.filter((v) => v.codec === 'snappy').map((v) => Buffer.from(v.batch, 'base64').subarray(61, 69).toString('hex'));
    expect(snappyHeads).toContain(MAGIC.snappy);
    expect(snappyHeads.some((h) => h !== MAGIC.snappy)).toBe(true);
  });

  it.each(vectors.map((v) => [v.codec, v.producer, v] as const))('kafkajs decodes a %s batch written by %s', async (_codec, _producer, v) => {
    const batch = Buffer.from(v.batch, 'base64');
    expect(batch.readInt16BE(21) & 0x07).toBe(NAMES.indexOf(v.codec) + 1);
    expect(await decodeRecords(batch)).toEqual(vectorRecords());
  });
});

describe('registerCompressionCodecs', () => {
  it.each(NAMES)('lets kafkajs encode and decode a %s batch', async (name) => {
    const type = parseCompression(name);
    expect(CompressionCodecs[type as 1 | 2 | 3 | 4]()).toBeDefined();
    const records = vectorRecords();
    const encoded = await RecordBatch({ compression: type, records: records.map((r) => Record({ key: Buffer.from(r.key), value: r.value, headers: {} })) });
    const batch = encoded.buffer;
    expect(batch.readInt16BE(21) & 0x07).toBe(type);
    expect(await decodeRecords(batch)).toEqual(records);
  });
});

describe('a batch that cannot be decompressed', () => {
  it.each(NAMES)('%s: fails with a non-retriable DecompressionError that names the codec and size, not the bytes', async (name) => {
    const garbage = Buffer.concat([Buffer.from(MAGIC[name], 'hex'), Buffer.from('not compressed at all, by any codec')]);
    // Through kafkajs' own table, so gzip's replacement is checked too.
    const registered = CompressionCodecs[parseCompression(name) as 1 | 2 | 3 | 4]() as { decompress(data: Buffer): Promise<Buffer> };
    const error = await registered.decompress(garbage).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DecompressionError);
    const d = error as DecompressionError;
    expect(d.message).toMatch(new RegExp(`^cannot decompress a ${name} record batch \\(${garbage.length} bytes\\): `));
    expect(d.message).not.toContain('not compressed at all');
    expect(d.code).toBe('KAFKA_DECOMPRESSION_FAILED');
    expect(d.retryable).toBe(false);
    // kafkajs retries (and restarts on) any error whose `retriable` is not exactly false.
    expect(d.retriable).toBe(false);
    expect(d.cause).toBeInstanceOf(Error);
  });

  it('fails on xerial Snappy whose last block is cut short', async () => {
    const whole = await CODECS.snappy.compress(text(40_000));
    await expect(kafkaJsCodec('snappy').decompress(whole.subarray(0, whole.length - 3))).rejects.toThrow(/overruns the/);
  });

  it('fails on a xerial block length with no block after it', async () => {
    const header = (await CODECS.snappy.compress(Buffer.alloc(0))).subarray(0, 16);
    await expect(kafkaJsCodec('snappy').decompress(Buffer.concat([header, Buffer.from([0, 0])]))).rejects.toThrow(/truncated block length/);
  });

  it('compresses through kafkajs Encoder objects (their .buffer)', async () => {
    const data = text(1000);
    const out = await kafkaJsCodec('zstd').compress({ buffer: data });
    expect((await CODECS.zstd.decompress(out)).equals(data)).toBe(true);
  });
});

describe('parseCompression', () => {
  it.each([
    ['none', CompressionTypes.None],
    ['gzip', CompressionTypes.GZIP],
    ['snappy', CompressionTypes.Snappy],
    ['lz4', CompressionTypes.LZ4],
    ['zstd', CompressionTypes.ZSTD],
  ] as const)('maps %s to kafkajs type %i', (name: CompressionName, type) => {
    expect(parseCompression(name)).toBe(type);
  });

  it.each(['', 'GZIP', 'brotli', 'lz4 ', 'toString', 'constructor'])('rejects %j with one line naming the choices', (value) => {
    const error = thrownBy(InputError, () => parseCompression(value));
    expect(error.message).toBe(`--compression must be one of none, gzip, snappy, lz4, zstd (got "${value}")`);
    expect(error.retryable).toBe(false);
  });
});
