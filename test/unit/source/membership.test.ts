/**
 * The errors here are kafkajs' own (its classes, its error table, its retrier), so that the
 * unwrapping is checked against what kafkajs 2.2.4 really throws from heartbeat() and commitOffsets().
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Generation, rebalanceCause } from '../../../src/source/membership.ts';

const require = createRequire(import.meta.url);

type ErrorClass = new (e: Error | string, metadata?: { cause?: Error; retryCount?: number; retryTime?: number }) => Error;
type Retrier = <T>(fn: () => Promise<T>) => Promise<T>;

// kafkajs' typings omit the constructors' metadata and `isRebalancing`; the runtime has both.
const { KafkaJSConnectionError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, isRebalancing } = require('kafkajs/src/errors.js') as {
  KafkaJSConnectionError: ErrorClass;
  KafkaJSNonRetriableError: ErrorClass;
  KafkaJSNumberOfRetriesExceeded: ErrorClass;
  isRebalancing(e: unknown): boolean;
};
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error & { type: string; code: number } };
const createRetry = require('kafkajs/src/retry/index.js') as (options: { retries: number }) => Retrier;

const REBALANCES = [
  { code: 27, type: 'REBALANCE_IN_PROGRESS' },
  { code: 22, type: 'ILLEGAL_GENERATION' },
  { code: 25, type: 'UNKNOWN_MEMBER_ID' },
  { code: 16, type: 'NOT_COORDINATOR_FOR_GROUP' },
];

/** How kafkajs' retrier (src/retry/index.js) wraps a failure it gives up on. */
const WRAPPINGS: { how: string; wrap: (e: Error) => Error }[] = [
  { how: 'bare', wrap: (e) => e },
  { how: 'in a KafkaJSNonRetriableError', wrap: (e) => new KafkaJSNonRetriableError(e, { cause: e.cause instanceof Error ? e.cause : e }) },
  {
    how: 'in a KafkaJSNumberOfRetriesExceeded',
    wrap: (e) => new KafkaJSNumberOfRetriesExceeded(e, { retryCount: 5, retryTime: 100, cause: e.cause instanceof Error ? e.cause : e }),
  },
  {
    how: 'by two nested retriers',
    wrap: (e) => {
      const inner = new KafkaJSNonRetriableError(e, { cause: e });
      return new KafkaJSNonRetriableError(inner, { cause: inner.cause instanceof Error ? inner.cause : inner });
    },
  },
  { how: 'in a plain Error with the cause', wrap: (e) => new Error('heartbeat failed', { cause: new Error('request failed', { cause: e }) }) },
];

const cases = REBALANCES.flatMap((r) => WRAPPINGS.map((w) => ({ ...r, ...w })));

/** What kafkajs' own retrier rejects with when `error` is thrown inside it (retries: 0, so no timer runs). */
async function throughRetrier(error: Error): Promise<Error> {
  try {
    await createRetry({ retries: 0 })(() => Promise.reject(error));
  } catch (wrapped) {
    if (wrapped instanceof Error) return wrapped;
  }
  throw new Error('the retrier did not reject with an Error');
}

describe('rebalanceCause', () => {
  it('reads the kafkajs 2.2.4 types of the rebalance codes from its own table', () => {
    expect(REBALANCES.map(({ code }) => createErrorFromCode(code).type)).toEqual(REBALANCES.map(({ type }) => type));
  });

  it.each(cases)('finds $type ($code) $how', ({ code, type, wrap }) => {
    const protocol = createErrorFromCode(code);
    const cause = rebalanceCause(wrap(protocol));
    expect(cause).toBe(protocol);
    expect((cause as { type?: string } | undefined)?.type).toBe(type);
  });

  it.each(REBALANCES)("finds $type ($code) through kafkajs' own retrier", async ({ code }) => {
    const protocol = createErrorFromCode(code);
    const wrapped = await throughRetrier(protocol);
    expect(wrapped).not.toBe(protocol);
    expect(rebalanceCause(wrapped)).toBe(protocol);
  });

  it.each([
    { what: 'a connection error', error: () => new KafkaJSConnectionError('Connection error: ECONNREFUSED') },
    { what: 'a wrapped connection error', error: () => new KafkaJSNonRetriableError(new KafkaJSConnectionError('Connection timeout'), {}) },
    { what: 'NOT_LEADER_FOR_PARTITION (6)', error: () => createErrorFromCode(6) },
    { what: 'REQUEST_TIMED_OUT (7)', error: () => createErrorFromCode(7) },
    { what: 'GROUP_LOAD_IN_PROGRESS (14)', error: () => createErrorFromCode(14) },
    { what: 'GROUP_COORDINATOR_NOT_AVAILABLE (15)', error: () => createErrorFromCode(15) },
    {
      what: 'GROUP_AUTHORIZATION_FAILED (30), wrapped',
      error: () => new KafkaJSNonRetriableError(createErrorFromCode(30), { cause: createErrorFromCode(30) }),
    },
    { what: 'a plain Error that mentions a rebalance', error: () => new Error('REBALANCE_IN_PROGRESS') },
    { what: 'a thrown string', error: () => 'REBALANCE_IN_PROGRESS' },
    { what: 'undefined', error: () => undefined },
  ])('does not take $what for a rebalance', ({ error }) => {
    expect(rebalanceCause(error())).toBeUndefined();
  });

  it('gives up on a cause chain that loops', () => {
    const looping = new Error('loop');
    looping.cause = looping;
    expect(rebalanceCause(looping)).toBeUndefined();
  });
});

describe('Generation', () => {
  it('starts active, with nothing to rethrow', () => {
    const generation = new Generation();
    expect(generation.active).toBe(true);
    expect(generation.revokedBy).toBeUndefined();
  });

  it('stays active on a failure that is not a rebalance', () => {
    const generation = new Generation();
    expect(generation.note(new KafkaJSConnectionError('Connection error'))).toBe(false);
    expect(generation.note(createErrorFromCode(7))).toBe(false);
    expect(generation.active).toBe(true);
    expect(generation.revokedBy).toBeUndefined();
  });

  it.each(REBALANCES)('ends on $type ($code) and keeps the protocol error itself, not its wrapper', async ({ code, type }) => {
    const generation = new Generation();
    const protocol = createErrorFromCode(code);
    expect(generation.note(await throughRetrier(protocol))).toBe(true);
    expect(generation.active).toBe(false);
    expect(generation.revokedBy).toBe(protocol);
    expect((generation.revokedBy as { type?: string } | undefined)?.type).toBe(type);
  });

  // kafkajs' runner (src/consumer/runner.js, start()) rejoins on isRebalancing(e), and separately on
  // e.type === 'UNKNOWN_MEMBER_ID'; anything else thrown from eachBatch is a crash.
  it.each(REBALANCES.filter(({ type }) => type !== 'UNKNOWN_MEMBER_ID'))(
    "rethrows an error kafkajs' runner rejoins on after $type ($code), where the wrapper would crash it",
    async ({ code }) => {
      const generation = new Generation();
      const wrapped = await throughRetrier(createErrorFromCode(code));
      generation.note(wrapped);
      expect(isRebalancing(generation.revokedBy)).toBe(true);
      expect(isRebalancing(wrapped)).toBe(false);
    },
  );

  it("rethrows UNKNOWN_MEMBER_ID with the type kafkajs' runner rejoins on (it is not one isRebalancing knows)", async () => {
    const generation = new Generation();
    generation.note(await throughRetrier(createErrorFromCode(25)));
    expect(isRebalancing(generation.revokedBy)).toBe(false);
    expect((generation.revokedBy as { type?: string } | undefined)?.type).toBe('UNKNOWN_MEMBER_ID');
  });

  it('keeps the first rebalance cause when more follow', () => {
    const generation = new Generation();
    const first = createErrorFromCode(27);
    generation.note(new KafkaJSNonRetriableError(first, { cause: first }));
    expect(generation.note(createErrorFromCode(22))).toBe(true);
    expect(generation.revokedBy).toBe(first);
  });

  it('keeps the rebalance cause after a later failure that is not a rebalance', () => {
    const generation = new Generation();
    const first = createErrorFromCode(22);
    generation.note(first);
    expect(generation.note(new KafkaJSConnectionError('Connection error'))).toBe(false);
    expect(generation.active).toBe(false);
    expect(generation.revokedBy).toBe(first);
  });

  it('ends on revoke() with nothing to rethrow', () => {
    const generation = new Generation();
    generation.revoke();
    expect(generation.active).toBe(false);
    expect(generation.revokedBy).toBeUndefined();
  });
});
