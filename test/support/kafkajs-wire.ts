/**
 * kafkajs' own internals, for fakes that behave as kafkajs does: its error table (with its
 * `retriable` flags), its retrier (which decides how a failure is wrapped), and its record-batch
 * encoder (the bytes the broker measures against max.message.bytes). kafkajs has no `exports` map,
 * so these files are reachable; they are typed here only as far as the tests use them.
 */
import { createRequire } from 'node:module';
import type { CompressionTypes, IHeaders, KafkaJSProtocolError } from 'kafkajs';

const require = createRequire(import.meta.url);

type Bail = (error: Error) => void;
type Retrier = <T>(fn: (bail: Bail, retryCount: number, retryTime: number) => Promise<T>) => Promise<T>;
interface Encoder {
  size(): number;
}

const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): KafkaJSProtocolError };
const createRetry = require('kafkajs/src/retry/index.js') as (options: { retries: number; initialRetryTime: number }) => Retrier;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch(options: { compression: CompressionTypes; records: unknown[] }): Promise<Encoder>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: {
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}) => unknown;

export { createErrorFromCode };

export const MESSAGE_TOO_LARGE = 10;
export const RECORD_LIST_TOO_LARGE = 18;
export const UNKNOWN_TOPIC_OR_PARTITION = 3;
export const NOT_LEADER_FOR_PARTITION = 6;
export const NOT_ENOUGH_REPLICAS = 19;
export const TOPIC_AUTHORIZATION_FAILED = 29;
export const INVALID_RECORD = 87;
/** Kafka's default message.max.bytes (1 MiB plus the 12-byte log overhead), as the local broker reports it. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

async function rejection(run: (retrier: Retrier) => Promise<unknown>): Promise<unknown> {
  try {
    await run(createRetry({ retries: 1, initialRetryTime: 1 }));
  } catch (error) {
    return error;
  }
  throw new Error('expected kafkajs to reject');
}

/**
 * What `producer.send` rejects with when the thrown error reaches sendMessages' catch (a produce
 * response error, a lost connection): retriable ones are retried, then wrapped in
 * KafkaJSNumberOfRetriesExceeded; others are bailed out bare (src/producer/sendMessages.js).
 */
export function sendFailure(error: Error & { retriable?: boolean }): Promise<unknown> {
  return rejection((retrier) =>
    retrier(async (bail) => {
      if (error.retriable === true) throw error;
      bail(error);
    }),
  );
}

/** The same for a produce response carrying `code`. */
export function produceFailure(code: number): Promise<unknown> {
  return sendFailure(createErrorFromCode(code));
}

/**
 * What `producer.send` rejects with when topic metadata fails (`addMultipleTargetTopics` runs
 * before sendMessages' try): retriable ones end in KafkaJSNumberOfRetriesExceeded, others in
 * KafkaJSNonRetriableError, both with the original as `cause` (src/retry/index.js).
 */
export function metadataFailure(error: Error): Promise<unknown> {
  return rejection((retrier) =>
    retrier(async () => {
      throw error;
    }),
  );
}

/** The size of the batch kafkajs produces for one record: what the broker compares with max.message.bytes. */
export async function batchSize(
  record: { key: Buffer | null; value: Buffer | null; headers?: IHeaders | undefined },
  compression: CompressionTypes,
): Promise<number> {
  const batch = await RecordBatch({ compression, records: [Record({ key: record.key, value: record.value, headers: record.headers ?? {} })] });
  return batch.size();
}
