/**
 * What kafkajs 2.2.4 really does, read from its source, as small pure functions the consumer
 * relies on (consumer.ts).
 */
import type { EachBatchPayload } from 'kafkajs';
import { causeChain } from '../errors.ts';
import { isPermanentKafkaError } from '../refusals.ts';

/**
 * kafkajs' own flag, through its retrier's wrapping (as its onCrash reads it), except for a refusal:
 * kafkajs calls an untrusted certificate a retriable connection error, which would loop here for ever.
 */
export function isRetriable(error: unknown): boolean {
  if (isPermanentKafkaError(error)) return false;
  const chain = causeChain(error);
  if (chain.some((e) => e instanceof Error && (e.name === 'KafkaJSNumberOfRetriesExceeded' || e.name === 'KafkaJSConnectionError'))) return true;
  const original = chain[chain.length - 1];
  return original instanceof Error && (original as { retriable?: unknown }).retriable === true;
}

/**
 * Where the fetch that produced the batch started. kafkajs keeps it on the batch (batch.js) but
 * its typings omit it.
 */
export function fetchedOffsetOf(batch: EachBatchPayload['batch']): string {
  const fetched = (batch as unknown as { fetchedOffset?: unknown }).fetchedOffset;
  return typeof fetched === 'string' ? fetched : String(fetched);
}

export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
