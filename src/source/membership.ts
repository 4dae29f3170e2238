/**
 * What this member knows of its group membership, from the signals kafkajs 2.2.4 really gives.
 *
 * kafkajs' `isRunning()` stays true through a rebalance and `isStale()` only means "a seek is
 * pending", so neither shows a revocation. kafkajs only supports the eager protocol: when the group
 * rebalances, every partition of every member is revoked at once. The member learns it when a
 * heartbeat or an offset commit fails with a rebalance error (REBALANCE_IN_PROGRESS,
 * ILLEGAL_GENERATION, NOT_COORDINATOR, UNKNOWN_MEMBER_ID; kafkajs' retrier may wrap it in `cause`),
 * and later from the REBALANCING event. Each generation starts at GROUP_JOIN.
 */
import { causeChain } from '../errors.ts';

const REBALANCE_TYPES: ReadonlySet<string> = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'NOT_COORDINATOR_FOR_GROUP',
  'NOT_COORDINATOR',
  'UNKNOWN_MEMBER_ID',
]);

/** The kafkajs protocol error (with its `type`) behind `error`, when it says the membership ended. */
export function rebalanceCause(error: unknown): Error | undefined {
  for (const e of causeChain(error)) {
    const type = e instanceof Error ? (e as { type?: unknown }).type : undefined;
    if (typeof type === 'string' && REBALANCE_TYPES.has(type)) return e as Error;
  }
  return undefined;
}

/** One generation of membership: active from GROUP_JOIN until revoked. */
export class Generation {
  #revokedBy: Error | undefined;
  #revoked = false;

  get active(): boolean {
    return !this.#revoked;
  }

  /**
   * The rebalance error that ended it, to be rethrown to kafkajs: its runner rejoins at once on an
   * error whose `type` says rebalance, and crashes the consumer on a wrapped one.
   */
  get revokedBy(): Error | undefined {
    return this.#revokedBy;
  }

  /** Any failure of a group call: returns true when it meant the membership ended. */
  note(error: unknown): boolean {
    const cause = rebalanceCause(error);
    if (cause === undefined) return false;
    this.#revokedBy ??= cause;
    this.#revoked = true;
    return true;
  }

  /** Ended without an error to rethrow (REBALANCING, CRASH, shutdown). */
  revoke(): void {
    this.#revoked = true;
  }
}
