import { describe, expect, it } from 'vitest';
import { type IssuedToken, RefreshingToken, refreshAtMs, TokenError } from '../../../src/source/token-cache.ts';

const MIN = 60_000;

/** A token source on a hand-driven clock: each fetch issues `t<n>` valid for `lifetimeMs`. */
function source(lifetimeMs: number) {
  const clock = { now: 1_000_000 };
  let issued = 0;
  let fail: TokenError | undefined;
  const fetches: number[] = [];
  const fetchToken = async (): Promise<IssuedToken> => {
    fetches.push(clock.now);
    if (fail !== undefined) throw fail;
    issued += 1;
    return { value: `t${issued}`, expiresAtMs: clock.now + lifetimeMs };
  };
  const token = new RefreshingToken(fetchToken, () => clock.now);
  return {
    clock,
    token,
    fetches,
    failWith: (error: TokenError | undefined) => {
      fail = error;
    },
  };
}

describe('refreshAtMs: at 80% of the lifetime or a minute before expiry, whichever comes first', () => {
  it.each([
    ['15 min (MSK IAM): 80% = 12 min comes first', 15 * MIN, 12 * MIN],
    ['1 h: 80% = 48 min comes first', 60 * MIN, 48 * MIN],
    ['5 min: 80% = 4 min', 5 * MIN, 4 * MIN],
    ['2 min: 80% = 96 s, a minute before = 60 s', 2 * MIN, MIN],
    ['1 min or less: at once, so every use fetches anew', MIN, 0],
    ['already expired: at once', -5000, 0],
  ])('%s', (_what, lifetime, after) => {
    expect(refreshAtMs(1000, 1000 + lifetime)).toBe(1000 + after);
  });
});

describe('RefreshingToken', () => {
  it('fetches once and hands the same token out until its refresh point', async () => {
    const s = source(15 * MIN);
    expect(await s.token.get()).toEqual({ value: 't1' });
    s.clock.now += 12 * MIN - 1;
    expect(await s.token.get()).toEqual({ value: 't1' });
    expect(s.fetches).toHaveLength(1);
  });

  it('replaces the token at its refresh point, before it expires', async () => {
    const s = source(15 * MIN);
    await s.token.get();
    s.clock.now += 12 * MIN;
    expect(await s.token.get()).toEqual({ value: 't2' });
    expect(s.fetches).toHaveLength(2);
  });

  it('shares one fetch between callers that arrive together (single flight)', async () => {
    const s = source(15 * MIN);
    const all = await Promise.all(Array.from({ length: 20 }, () => s.token.get()));
    expect(new Set(all.map((t) => t.value))).toEqual(new Set(['t1']));
    expect(s.fetches).toHaveLength(1);
  });

  it('does not cache a failure: the next call fetches again', async () => {
    const s = source(15 * MIN);
    s.failWith(new TokenError('endpoint down', true));
    await expect(s.token.get()).rejects.toThrow('endpoint down');
    s.failWith(undefined);
    expect(await s.token.get()).toEqual({ value: 't1' });
    expect(s.fetches).toHaveLength(2);
  });

  it('keeps handing out a still-valid token while a refresh fails retryably', async () => {
    const s = source(15 * MIN);
    await s.token.get();
    s.clock.now += 13 * MIN;
    s.failWith(new TokenError('endpoint down', true));
    expect(await s.token.get()).toEqual({ value: 't1' });
    // ...and tries again on the next call.
    s.failWith(undefined);
    expect(await s.token.get()).toEqual({ value: 't2' });
  });

  it('surfaces a refusal at once, even with a still-valid token in hand', async () => {
    const s = source(15 * MIN);
    await s.token.get();
    s.clock.now += 13 * MIN;
    s.failWith(new TokenError('client secret refused', false));
    await expect(s.token.get()).rejects.toMatchObject({ retryable: false, retriable: false });
  });

  it('does not hand out a token about to expire when the refresh fails', async () => {
    const s = source(15 * MIN);
    await s.token.get();
    s.clock.now += 15 * MIN - 4000;
    s.failWith(new TokenError('endpoint down', true));
    await expect(s.token.get()).rejects.toThrow('endpoint down');
  });
});

describe('TokenError', () => {
  it.each([
    [true, 'KAFKA_UNAVAILABLE'],
    [false, 'CONFIG_INVALID'],
  ])('retryable %s: code %s, and kafkajs reads the same answer from `retriable`', (retryable, code) => {
    const error = new TokenError('x', retryable);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(error.retriable).toBe(retryable);
  });
});
