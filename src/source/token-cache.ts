/**
 * One SASL/OAUTHBEARER token, shared by every connection of the client and replaced before it
 * expires. kafkajs asks its `oauthBearerProvider` on each (re)authentication and leaves reuse and
 * refresh to the provider; the OIDC client-credentials provider (oauth.ts) and the MSK IAM one
 * (msk-iam.ts) differ only in how they get a token, so both sit behind this cache.
 */
import { type ErrorCode, SinkError } from '../errors.ts';

export interface IssuedToken {
  /** The bearer token. A credential: never logged. */
  readonly value: string;
  /** When it stops being valid, in ms since the epoch. */
  readonly expiresAtMs: number;
}

/** What kafkajs' `oauthBearerProvider` resolves to. */
export interface OauthBearerToken {
  readonly value: string;
}

/**
 * A token provider's failure, in both vocabularies: ours (`retryable`) and kafkajs' (`retriable`,
 * which its retrier reads to decide whether to try again). A refused client secret is the
 * operator's to fix (CONFIG_INVALID, not retryable, so kafkajs gives up instead of hammering the
 * token endpoint); an endpoint that is down is KAFKA_UNAVAILABLE, retried like a broker outage.
 */
export class TokenError extends SinkError {
  readonly retriable: boolean;

  constructor(message: string, retryable: boolean, options: { cause?: unknown } = {}) {
    const code: ErrorCode = retryable ? 'KAFKA_UNAVAILABLE' : 'CONFIG_INVALID';
    super(code, message, retryable, options);
    this.retriable = retryable;
  }
}

/** A token is never kept closer than this to its expiry, nor past 80% of its lifetime, whichever comes first. */
export const REFRESH_MARGIN_MS = 60_000;
export const REFRESH_FRACTION = 0.8;
/** A still-valid token is handed out while its refresh fails retryably, unless it has less than this left. */
export const STALE_GRACE_MS = 5_000;

/** When a token issued at `issuedAtMs` should be replaced. Tokens living a minute or less are fetched anew each time. */
export function refreshAtMs(issuedAtMs: number, expiresAtMs: number): number {
  const lifetime = expiresAtMs - issuedAtMs;
  return issuedAtMs + Math.max(0, Math.min(REFRESH_FRACTION * lifetime, lifetime - REFRESH_MARGIN_MS));
}

interface Cached extends IssuedToken {
  readonly refreshAtMs: number;
}

export class RefreshingToken {
  readonly #fetchToken: () => Promise<IssuedToken>;
  readonly #now: () => number;
  #current: Cached | undefined;
  #inFlight: Promise<Cached> | undefined;

  constructor(fetchToken: () => Promise<IssuedToken>, now: () => number = Date.now) {
    this.#fetchToken = fetchToken;
    this.#now = now;
  }

  /** The current token, fetched first when there is none or it is due for refresh. */
  async get(): Promise<OauthBearerToken> {
    const current = this.#current;
    if (current !== undefined && this.#now() < current.refreshAtMs) return { value: current.value };
    try {
      return { value: (await this.#refresh()).value };
    } catch (error) {
      // The endpoint is down but the token in hand is still good: use it, and try again next call.
      const retryable = error instanceof SinkError && error.retryable;
      if (retryable && current !== undefined && this.#now() < current.expiresAtMs - STALE_GRACE_MS) return { value: current.value };
      throw error;
    }
  }

  /** Single flight: callers that arrive while a fetch is running share it. A failed fetch is not cached. */
  #refresh(): Promise<Cached> {
    this.#inFlight ??= (async () => {
      try {
        const issuedAtMs = this.#now();
        const token = await this.#fetchToken();
        const cached = { ...token, refreshAtMs: refreshAtMs(issuedAtMs, token.expiresAtMs) };
        this.#current = cached;
        return cached;
      } finally {
        this.#inFlight = undefined;
      }
    })();
    return this.#inFlight;
  }
}
