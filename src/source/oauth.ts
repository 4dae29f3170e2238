/**
 * SASL/OAUTHBEARER tokens from an OIDC provider's token endpoint, with the client-credentials grant
 * (RFC 6749 section 4.4), as the Java client does with sasl.oauthbearer.token.endpoint.url: a POST
 * of grant_type=client_credentials (and the scope, if any), the client id and secret in an HTTP
 * Basic header, form-encoded first (section 2.3.1). The answer's access_token is the SASL token;
 * expires_in (or else the JWT's exp claim) says when to replace it.
 *
 * Neither the client secret nor a token ever appears in an error message; the endpoint is named by
 * origin and path only.
 */
import { scrub } from '../redact.ts';
import { type IssuedToken, type OauthBearerToken, RefreshingToken, TokenError } from './token-cache.ts';

export interface ClientCredentials {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope?: string | undefined;
  /** Bound on one token request. */
  readonly timeoutMs: number;
}

/** Lifetime assumed when the answer has neither expires_in nor a JWT exp claim (RFC 6749 leaves expires_in optional). */
export const DEFAULT_LIFETIME_MS = 300_000;
/** OAuth error descriptions are meant for people, but come from outside: kept short. */
const MAX_DESCRIPTION_CHARS = 200;

/** kafkajs' oauthBearerProvider for KAFKA_SASL_MECHANISM=oauthbearer. */
export function clientCredentialsProvider(settings: ClientCredentials, now: () => number = Date.now): () => Promise<OauthBearerToken> {
  const token = new RefreshingToken(() => fetchClientCredentialsToken(settings, now), now);
  return () => token.get();
}

export async function fetchClientCredentialsToken(s: ClientCredentials, now: () => number = Date.now): Promise<IssuedToken> {
  const endpoint = endpointName(s.tokenUrl);
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (s.scope !== undefined) form.set('scope', s.scope);
  let status: number;
  let text: string;
  try {
    const res = await fetch(s.tokenUrl, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${formEncode(s.clientId)}:${formEncode(s.clientSecret)}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form.toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(s.timeoutMs),
    });
    status = res.status;
    text = await res.text();
  } catch (error) {
    throw new TokenError(`KAFKA_SASL_OAUTHBEARER_TOKEN_URL: token endpoint ${endpoint} got no answer: ${networkReason(error)}`, true, { cause: error });
  }
  const body = parseJson(text);
  if (status === 200) return issuedToken(body, endpoint, now());
  const oauthError = describeOAuthError(body, s);
  const what = `token endpoint ${endpoint} answered HTTP ${status}${oauthError === '' ? '' : ` ${oauthError}`}`;
  if (status === 408 || status === 429 || status >= 500) throw new TokenError(`KAFKA_SASL_OAUTHBEARER_TOKEN_URL: ${what}`, true);
  throw new TokenError(`${settingToBlame(status, body)}: ${what}`, false);
}

function issuedToken(body: unknown, endpoint: string, nowMs: number): IssuedToken {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const value = record.access_token;
  if (typeof value !== 'string' || value === '') {
    throw new TokenError(
      `KAFKA_SASL_OAUTHBEARER_TOKEN_URL: token endpoint ${endpoint} answered 200 without an access_token (is it the token endpoint?)`,
      false,
    );
  }
  const expiresIn = Number(record.expires_in);
  if (record.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0) return { value, expiresAtMs: nowMs + expiresIn * 1000 };
  const exp = jwtExpiry(value);
  return { value, expiresAtMs: exp ?? nowMs + DEFAULT_LIFETIME_MS };
}

/** The `exp` claim (seconds) of a JWT, in ms; undefined for a token that is not a JWT or has none. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  const claims = parseJson(Buffer.from(payload, 'base64url').toString('utf8'));
  const exp = typeof claims === 'object' && claims !== null && 'exp' in claims ? Number(claims.exp) : Number.NaN;
  return Number.isFinite(exp) ? exp * 1000 : undefined;
}

/** Which setting a refusal points at, by the OAuth error code (RFC 6749 section 5.2). */
function settingToBlame(status: number, body: unknown): string {
  const code = oauthField(body, 'error');
  if (code === 'invalid_scope') return 'KAFKA_SASL_OAUTHBEARER_SCOPE';
  if (code === 'invalid_client' || code === 'unauthorized_client' || status === 401)
    return 'KAFKA_SASL_OAUTHBEARER_CLIENT_ID/KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET';
  return 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL';
}

/** "invalid_client (Client authentication failed)", with the client's own credentials scrubbed out of it. */
function describeOAuthError(body: unknown, s: ClientCredentials): string {
  const code = oauthField(body, 'error');
  if (code === undefined) return '';
  const description = oauthField(body, 'error_description')?.slice(0, MAX_DESCRIPTION_CHARS);
  const text = description === undefined ? code : `${code} (${description})`;
  return scrub(text, [s.clientSecret]);
}

function oauthField(body: unknown, name: string): string | undefined {
  if (typeof body !== 'object' || body === null || !(name in body)) return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

/** Origin and path: no userinfo (refused by config anyway), no query. */
function endpointName(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** application/x-www-form-urlencoded, as RFC 6749 section 2.3.1 asks before the Basic header. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** undici rejects with "fetch failed" and puts the reason (ECONNREFUSED, a certificate error) in `cause`. */
function networkReason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  const cause = error instanceof Error ? error.cause : undefined;
  if (typeof cause === 'object' && cause !== null && 'code' in cause) return String(cause.code);
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.name : 'unknown failure';
}
