/**
 * The OIDC client-credentials token provider against a real token endpoint on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ClientCredentials, clientCredentialsProvider, DEFAULT_LIFETIME_MS, fetchClientCredentialsToken, jwtExpiry } from '../../../src/source/oauth.ts';
import { TokenError } from '../../../src/source/token-cache.ts';
import { rejectionOf } from '../../support/thrown.ts';
import { startTokenEndpoint, type TokenEndpoint, unsecuredJwt } from '../../support/token-endpoint.ts';

const CLIENT_ID = 'tow-and-go-sink';
// Characters that form encoding must escape before the Basic header: a naive join would break.
const SECRET = 'cl1ent:s3cret with+spaces&%';

let endpoint: TokenEndpoint;
afterEach(async () => {
  await endpoint?.close();
});

async function start(): Promise<ClientCredentials> {
  endpoint = await startTokenEndpoint(CLIENT_ID, SECRET);
  return { tokenUrl: endpoint.url, clientId: CLIENT_ID, clientSecret: SECRET, timeoutMs: 2000 };
}

async function tokenError(settings: ClientCredentials): Promise<TokenError> {
  const error = await rejectionOf(fetchClientCredentialsToken(settings));
  expect(error).toBeInstanceOf(TokenError);
  return error as TokenError;
}

function expectNoSecret(error: TokenError): void {
  expect(`${error.message} ${String(error.cause)}`).not.toContain(SECRET);
  for (const token of endpoint.issued) expect(error.message).not.toContain(token);
}

describe('fetchClientCredentialsToken', () => {
  it('POSTs grant_type=client_credentials with the client in HTTP Basic, form-encoded, and returns the access token', async () => {
    const settings = await start();
    const before = Date.now();
    const token = await fetchClientCredentialsToken({ ...settings, scope: 'kafka:read kafka:write' });
    expect(token.value).toBe(endpoint.issued[0]);
    expect(token.expiresAtMs).toBeGreaterThanOrEqual(before + 900_000);
    expect(token.expiresAtMs).toBeLessThanOrEqual(Date.now() + 900_000);
    const [request] = endpoint.requests;
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request?.form.get('grant_type')).toBe('client_credentials');
    expect(request?.form.get('scope')).toBe('kafka:read kafka:write');
    expect(request?.headers.authorization).toMatch(/^Basic /);
  });

  it('asks for no scope when none is set', async () => {
    const settings = await start();
    await fetchClientCredentialsToken(settings);
    expect(endpoint.requests[0]?.form.has('scope')).toBe(false);
  });

  it("takes the lifetime from the JWT's exp claim when the answer has no expires_in", async () => {
    const settings = await start();
    endpoint.omitExpiresIn = true;
    endpoint.lifetimeSeconds = 120;
    const token = await fetchClientCredentialsToken(settings);
    expect(token.expiresAtMs).toBe(jwtExpiry(token.value));
    expect(token.expiresAtMs).toBeLessThanOrEqual(Date.now() + 120_000);
  });

  it('assumes five minutes for an opaque token without expires_in', async () => {
    const settings = await start();
    endpoint.override = { status: 200, body: { access_token: 'opaque-token', token_type: 'Bearer' } };
    const token = await fetchClientCredentialsToken(settings, () => 1000);
    expect(token).toEqual({ value: 'opaque-token', expiresAtMs: 1000 + DEFAULT_LIFETIME_MS });
  });

  describe('refusals: not retryable, naming the setting to fix, never the secret', () => {
    it('a wrong client secret (401 invalid_client) names the client id and secret', async () => {
      const settings = await start();
      const error = await tokenError({ ...settings, clientSecret: 'wrong-secret' });
      expect(error.retryable).toBe(false);
      expect(error.retriable).toBe(false);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toBe(
        `KAFKA_SASL_OAUTHBEARER_CLIENT_ID/KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: token endpoint ${endpoint.url} answered HTTP 401 invalid_client (Client authentication failed)`,
      );
      expect(error.message).not.toContain('wrong-secret');
    });

    it.each([
      ['400 invalid_scope', { status: 400, body: { error: 'invalid_scope' } }, 'KAFKA_SASL_OAUTHBEARER_SCOPE: '],
      [
        '400 unauthorized_client',
        { status: 400, body: { error: 'unauthorized_client' } },
        'KAFKA_SASL_OAUTHBEARER_CLIENT_ID/KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: ',
      ],
      ['400 invalid_request', { status: 400, body: { error: 'invalid_request' } }, 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: '],
      ['401 without a body', { status: 401 }, 'KAFKA_SASL_OAUTHBEARER_CLIENT_ID/KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: '],
      ['404 (not the token endpoint)', { status: 404, body: '<html>' }, 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: '],
      ['302 (a login page; not followed)', { status: 302 }, 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: '],
      ['200 without an access_token', { status: 200, body: { hello: 'world' } }, 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: '],
    ])('%s', async (_what, answer, prefix) => {
      const settings = await start();
      endpoint.override = answer;
      const error = await tokenError(settings);
      expect(error.retryable).toBe(false);
      expect(error.message.startsWith(prefix)).toBe(true);
      expectNoSecret(error);
    });

    it('scrubs the client secret even when the endpoint echoes it', async () => {
      const settings = await start();
      endpoint.override = { status: 401, body: { error: 'invalid_client', error_description: `bad secret ${SECRET}` } };
      const error = await tokenError(settings);
      expect(error.message).toContain('bad secret <redacted>');
      expectNoSecret(error);
    });
  });

  describe('outages: retryable (kafkajs retries, like a broker that is down)', () => {
    it.each([
      ['HTTP 500', { status: 500 }],
      ['HTTP 503', { status: 503, body: { error: 'temporarily_unavailable' } }],
      ['HTTP 429', { status: 429 }],
    ])('%s', async (_what, answer) => {
      const settings = await start();
      endpoint.override = answer;
      const error = await tokenError(settings);
      expect(error.retryable).toBe(true);
      expect(error.retriable).toBe(true);
      expect(error.message).toMatch(/^KAFKA_SASL_OAUTHBEARER_TOKEN_URL: token endpoint .* answered HTTP \d+/);
    });

    it('a refused connection', async () => {
      const settings = await start();
      await endpoint.close();
      const error = await tokenError(settings);
      expect(error.retryable).toBe(true);
      expect(error.message).toBe(`KAFKA_SASL_OAUTHBEARER_TOKEN_URL: token endpoint ${endpoint.url} got no answer: ECONNREFUSED`);
      expectNoSecret(error);
    });

    it('an endpoint that does not answer within the timeout', async () => {
      const settings = await start();
      endpoint.override = 'hang';
      const error = await tokenError({ ...settings, timeoutMs: 150 });
      expect(error.retryable).toBe(true);
      expect(error.message).toMatch(/got no answer: timed out$/);
    });
  });
});

describe('clientCredentialsProvider (what kafkajs calls on each authentication)', () => {
  it('caches the token: many authentications, one request', async () => {
    const provider = clientCredentialsProvider(await start());
    for (let i = 0; i < 5; i++) expect(await provider()).toEqual({ value: endpoint.issued[0] });
    expect(endpoint.requests).toHaveLength(1);
  });

  it('makes one request for concurrent callers (single flight)', async () => {
    const provider = clientCredentialsProvider(await start());
    endpoint.delayMs = 100;
    const tokens = await Promise.all(Array.from({ length: 10 }, () => provider()));
    expect(endpoint.requests).toHaveLength(1);
    expect(new Set(tokens.map((t) => t.value)).size).toBe(1);
  });

  it('fetches a new token at 80% of the old one’s lifetime, before it expires', async () => {
    const clock = { now: Date.now() };
    const provider = clientCredentialsProvider(await start(), () => clock.now);
    endpoint.lifetimeSeconds = 600;
    const first = await provider();
    clock.now += 479_000;
    expect(await provider()).toEqual(first);
    clock.now += 1_000; // 480 s: 80% of 600 s
    const second = await provider();
    expect(second).not.toEqual(first);
    expect(endpoint.requests).toHaveLength(2);
  });

  it('keeps the still-valid token while the endpoint is down, and refreshes once it is back', async () => {
    const clock = { now: Date.now() };
    const provider = clientCredentialsProvider(await start(), () => clock.now);
    const first = await provider();
    clock.now += 800_000; // past the refresh point, 100 s before expiry
    endpoint.override = { status: 503 };
    expect(await provider()).toEqual(first);
    endpoint.override = undefined;
    expect(await provider()).not.toEqual(first);
  });

  it('hands kafkajs a token that is an unsecured JWT for the client id (what the local broker accepts)', async () => {
    const provider = clientCredentialsProvider(await start());
    const { value } = await provider();
    const claims = JSON.parse(Buffer.from(value.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string };
    expect(claims.sub).toBe(CLIENT_ID);
  });
});

describe('jwtExpiry', () => {
  it.each([
    ['a JWT with exp', unsecuredJwt({ sub: 'a', exp: 1_700_000_000 }), 1_700_000_000_000],
    ['a JWT without exp', unsecuredJwt({ sub: 'a' }), undefined],
    ['an opaque token', 'abc123', undefined],
    ['garbage between dots', 'a.%%%.b', undefined],
  ])('%s', (_what, token, expected) => {
    expect(jwtExpiry(token)).toBe(expected);
  });
});
