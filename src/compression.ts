/**
 * Kafka's record-batch compression codecs for kafkajs, which ships only gzip. Without these a
 * Snappy, LZ4 or ZSTD batch from any other producer (Java, librdkafka, Go, …) stops the consumer.
 *
 * - gzip:   Node's zlib, as kafkajs' own codec; registered again only so that its failures are
 *           classified like the others' (see DecompressionError).
 * - snappy: `snappy` (napi-rs, prebuilt binaries as optionalDependencies) for the raw blocks. Kafka
 *           frames them its own way (xerial/snappy-java, below), not in the Snappy frame format.
 * - lz4:    `lz4-napi` (napi-rs over lz4_flex, prebuilt binaries) for the standard LZ4 frame
 *           format, which is what record batches v2 carry.
 * - zstd:   Node 24's built-in zlib zstd; no dependency.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import kafkajs, { CompressionTypes } from 'kafkajs';
import { compressFrame, decompressFrame } from 'lz4-napi';
import * as snappy from 'snappy';
import { InputError } from './errors.ts';

// Node's CommonJS export detection misses this one (kafkajs exports it as a member expression), so it
// comes from the default export. It is kafkajs' own table, mutated in place.
const { CompressionCodecs } = kafkajs;

/** One codec, on whole buffers: what kafkajs needs from it, minus its Encoder wrapper. */
export interface Codec {
  compress(data: Buffer): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

export const COMPRESSION_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type CompressionName = (typeof COMPRESSION_NAMES)[number];

const TYPES: Readonly<Record<CompressionName, CompressionTypes>> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** `--compression` value to the kafkajs type. Names are Kafka's own (`compression.type`). */
export function parseCompression(value: string): CompressionTypes {
  const type = (COMPRESSION_NAMES as readonly string[]).includes(value) ? TYPES[value as CompressionName] : undefined;
  if (type === undefined) throw new InputError(`--compression must be one of ${COMPRESSION_NAMES.join(', ')} (got "${value}")`);
  return type;
}

/**
 * A record batch that cannot be decompressed: it will not decompress on a retry either, so this is
 * fatal, never a stall. It sits outside SinkError on purpose: it never reaches the pipeline (kafkajs
 * throws it from a fetch, before any record exists), so it has no DLQ route and no error-table row.
 * `retriable: false` is kafkajs' spelling: without it kafkajs counts an unknown error as retriable,
 * retries the fetch, then restarts the consumer on the same batch forever, inside a process that
 * looks alive. With it the consumer crashes without restart and the process exits 1.
 */
export class DecompressionError extends Error {
  readonly code = 'KAFKA_DECOMPRESSION_FAILED';
  readonly retryable = false;
  readonly retriable = false;

  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'DecompressionError';
  }
}

const gzip = promisify(zlib.gzip);
const unzip = promisify(zlib.unzip);
const zstdCompress = promisify(zlib.zstdCompress);
const zstdDecompress = promisify(zlib.zstdDecompress);

/** snappy-java's stream header: magic, then version and minimum compatible version (both 1). */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = XERIAL_MAGIC.length + 8;
/** snappy-java's default block size, which Kafka's Java producer uses. */
export const XERIAL_BLOCK_BYTES = 32 * 1024;

/**
 * Snappy as the Java producer writes it (snappy-java's SnappyOutputStream): the xerial header,
 * then per 32 KiB of input a 4-byte big-endian length and one raw Snappy block. Kafka's own
 * console consumer and kcat read it back (test/integration/codecs.test.ts).
 */
async function snappyCompress(data: Buffer): Promise<Buffer> {
  const header = Buffer.alloc(XERIAL_HEADER_BYTES);
  XERIAL_MAGIC.copy(header);
  header.writeInt32BE(1, XERIAL_MAGIC.length);
  header.writeInt32BE(1, XERIAL_MAGIC.length + 4);
  const parts: Buffer[] = [header];
  for (let at = 0; at < data.length; at += XERIAL_BLOCK_BYTES) {
    const block = await snappy.compress(data.subarray(at, at + XERIAL_BLOCK_BYTES));
    const length = Buffer.alloc(4);
    length.writeInt32BE(block.length);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

/**
 * Both Snappy forms seen in Kafka: xerial framing (the Java client) and one raw block (librdkafka
 * 2.0.2, in record batches v2; see test/support/codec-vectors.json). The magic tells them apart, as
 * snappy-java's own reader does.
 */
async function snappyDecompress(data: Buffer): Promise<Buffer> {
  if (!isXerial(data)) return asBuffer(await snappy.uncompress(data, { asBuffer: true }));
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER_BYTES;
  while (at < data.length) {
    if (at + 4 > data.length) throw new Error(`xerial snappy: truncated block length at byte ${at}`);
    const length = data.readInt32BE(at);
    const end = at + 4 + length;
    if (length < 0 || end > data.length) throw new Error(`xerial snappy: block of ${length} bytes at byte ${at} overruns the ${data.length}-byte input`);
    blocks.push(asBuffer(await snappy.uncompress(data.subarray(at + 4, end), { asBuffer: true })));
    at = end;
  }
  return Buffer.concat(blocks);
}

function isXerial(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_BYTES && data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC);
}

/** snappy's typings allow a string result; with `asBuffer: true` it is always a Buffer. */
function asBuffer(value: string | Buffer): Buffer {
  if (typeof value === 'string') throw new TypeError('snappy.uncompress returned a string despite asBuffer: true');
  return value;
}

export const CODECS: Readonly<Record<Exclude<CompressionName, 'none'>, Codec>> = {
  gzip: { compress: (data) => gzip(data), decompress: (data) => unzip(data) },
  snappy: { compress: snappyCompress, decompress: snappyDecompress },
  // lz4-napi's frame defaults match Kafka's Java producer: 64 KiB independent blocks, no content size.
  lz4: { compress: (data) => compressFrame(data), decompress: (data) => decompressFrame(data) },
  zstd: { compress: (data) => zstdCompress(data), decompress: (data) => zstdDecompress(data) },
};

/** kafkajs' codec shape: compress gets its Encoder, decompress the batch's records bytes. */
interface KafkaJsCodec {
  compress(encoder: { readonly buffer: Buffer }): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

/** The codec kafkajs calls: decompression failures become a fatal, classified DecompressionError. */
export function kafkaJsCodec(name: Exclude<CompressionName, 'none'>): KafkaJsCodec {
  const codec = CODECS[name];
  return {
    compress: (encoder) => codec.compress(encoder.buffer),
    decompress: async (data) => {
      try {
        return await codec.decompress(data);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new DecompressionError(`cannot decompress a ${name} record batch (${data.length} bytes): ${reason}`, { cause: error });
      }
    },
  };
}

/**
 * Registers all four codecs in kafkajs' process-wide table. Idempotent; called by createKafka() so
 * that every client the service builds can read and write every codec.
 */
export function registerCompressionCodecs(): void {
  const gzipCodec = kafkaJsCodec('gzip');
  const snappyCodec = kafkaJsCodec('snappy');
  const lz4Codec = kafkaJsCodec('lz4');
  const zstdCodec = kafkaJsCodec('zstd');
  CompressionCodecs[CompressionTypes.GZIP] = () => gzipCodec;
  CompressionCodecs[CompressionTypes.Snappy] = () => snappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec;
}
