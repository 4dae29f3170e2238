/**
 * MSK IAM tokens from AWS's signer with fixed credentials: the token's shape, its expiry, refresh
 * before expiry, and that the secret access key never shows, in the token or in an error.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { saslOptions } from '../../../src/source/kafka.ts';
import { type CredentialsProvider, mskIamProvider, signMskIamToken } from '../../../src/source/msk-iam.ts';
import { TokenError } from '../../../src/source/token-cache.ts';
import { rejectionOf } from '../../support/thrown.ts';

const ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN';
const REGION = 'eu-west-1';
const MIN = 60_000;

const fixed =
  (extra: { sessionToken?: string; expiration?: Date } = {}): CredentialsProvider =>
  async () => ({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, ...extra });

/** The presigned URL inside a token. */
function decode(token: string): URL {
  return new URL(Buffer.from(token, 'base64url').toString('utf8'));
}

/** X-Amz-Date (yyyymmddThhmmssZ) in ms. */
function signedAtMs(url: URL): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(url.searchParams.get('X-Amz-Date') ?? '');
  if (m === null) throw new Error('no X-Amz-Date');
  const [, y, mo, d, h, mi, s] = m.map(Number);
  return Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('signMskIamToken', () => {
  it('is the base64url of a SigV4-presigned kafka-cluster:Connect URL for the region', async () => {
    const { value } = await signMskIamToken(REGION, fixed());
    expect(value).toMatch(/^[A-Za-z0-9_-]+$/); // base64url, no padding
    const url = decode(value);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe(`kafka.${REGION}.amazonaws.com`);
    const q = url.searchParams;
    expect(q.get('Action')).toBe('kafka-cluster:Connect');
    expect(q.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(q.get('X-Amz-Credential')).toMatch(new RegExp(`^${ACCESS_KEY_ID}/\\d{8}/${REGION}/kafka-cluster/aws4_request$`));
    expect(q.get('X-Amz-Expires')).toBe('900');
    expect(q.get('X-Amz-SignedHeaders')).toBe('host');
    expect(q.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(q.get('User-Agent')).toMatch(/^aws-msk-iam-sasl-signer-js\/\d+\.\d+\.\d+$/);
  });

  it('expires 15 minutes after it was signed', async () => {
    const { value, expiresAtMs } = await signMskIamToken(REGION, fixed());
    expect(expiresAtMs).toBe(signedAtMs(decode(value)) + 15 * MIN);
  });

  it('expires with its credentials when they run out first, and still signs a whole X-Amz-Expires', async () => {
    const expiration = new Date(Date.now() + 5 * MIN + 123);
    const { value, expiresAtMs } = await signMskIamToken(REGION, fixed({ expiration }));
    expect(expiresAtMs).toBe(expiration.getTime());
    // The signer alone would write a fraction such as 300.119, which AWS refuses.
    expect(decode(value).searchParams.get('X-Amz-Expires')).toBe('900');
  });

  it('carries a session token as X-Amz-Security-Token', async () => {
    const { value } = await signMskIamToken(REGION, fixed({ sessionToken: SESSION_TOKEN }));
    expect(decode(value).searchParams.get('X-Amz-Security-Token')).toBe(SESSION_TOKEN);
  });

  it('never contains the secret access key, encoded or decoded', async () => {
    const { value } = await signMskIamToken(REGION, fixed({ sessionToken: SESSION_TOKEN }));
    const decoded = Buffer.from(value, 'base64url').toString('utf8');
    for (const text of [value, decoded, decodeURIComponent(decoded)]) {
      expect(text).not.toContain(SECRET_ACCESS_KEY);
      expect(text).not.toContain(encodeURIComponent(SECRET_ACCESS_KEY));
    }
  });

  describe('failures: retryable TokenErrors that name the region and never a secret', () => {
    it.each<[string, CredentialsProvider]>([
      [
        'no credentials anywhere in the chain',
        async () => {
          throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
        },
      ],
      ['credentials without a secret', async () => ({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: '' })],
    ])('%s', async (_what, credentials) => {
      const error = await rejectionOf(signMskIamToken(REGION, credentials));
      expect(error).toBeInstanceOf(TokenError);
      expect((error as TokenError).retryable).toBe(true);
      expect((error as TokenError).message).toMatch(
        /^aws-msk-iam: cannot sign an MSK IAM token for region eu-west-1 \(AWS credentials, KAFKA_SASL_AWS_REGION\): /,
      );
      expect((error as TokenError).message).not.toContain(SECRET_ACCESS_KEY);
      expect((error as TokenError).cause).toBeUndefined();
    });

    it('scrubs the secret and session token out of a signer error', async () => {
      let calls = 0;
      const credentials: CredentialsProvider = async () => {
        calls += 1;
        return { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, sessionToken: SESSION_TOKEN };
      };
      // An empty region makes the signer itself throw, after the credentials were read.
      const error = (await rejectionOf(signMskIamToken('', credentials))) as TokenError;
      expect(calls).toBe(1);
      expect(error.message).not.toContain(SECRET_ACCESS_KEY);
      expect(error.message).not.toContain(SESSION_TOKEN);
    });
  });
});

describe('mskIamProvider', () => {
  it('hands out one token until 80% of its 15 minutes, then signs a new one before it expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-01T10:00:00Z'));
    let reads = 0;
    const provider = mskIamProvider({
      region: REGION,
      credentials: async () => {
        reads += 1;
        return { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY };
      },
    });
    const first = await provider();
    vi.setSystemTime(new Date('2026-03-01T10:11:59Z'));
    expect(await provider()).toEqual(first);
    vi.setSystemTime(new Date('2026-03-01T10:12:00Z'));
    const second = await provider();
    expect(second).not.toEqual(first);
    expect(decode(second.value).searchParams.get('X-Amz-Date')).toBe('20260301T101200Z');
    expect(reads).toBe(2);
  });

  it('shares one signing between concurrent authentications', async () => {
    let reads = 0;
    const provider = mskIamProvider({
      region: REGION,
      credentials: async () => {
        reads += 1;
        return { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY };
      },
    });
    const tokens = await Promise.all(Array.from({ length: 8 }, () => provider()));
    expect(new Set(tokens.map((t) => t.value)).size).toBe(1);
    expect(reads).toBe(1);
  });
});

describe('KAFKA_SASL_MECHANISM=aws-msk-iam', () => {
  it('is kafkajs OAUTHBEARER fed by the MSK IAM provider (not kafkajs’ own `aws` mechanism)', async () => {
    const config = loadConfig({ KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'true', AWS_REGION: REGION });
    expect(config.KAFKA_SASL_AWS_REGION).toBe(REGION);
    const sasl = saslOptions(config, fixed());
    expect(sasl?.mechanism).toBe('oauthbearer');
    if (sasl?.mechanism !== 'oauthbearer') throw new Error('expected oauthbearer');
    const { value } = await sasl.oauthBearerProvider();
    expect(decode(value).searchParams.get('Action')).toBe('kafka-cluster:Connect');
    expect(decode(value).host).toBe(`kafka.${REGION}.amazonaws.com`);
  });

  it('prefers KAFKA_SASL_AWS_REGION over AWS_REGION', () => {
    const config = loadConfig({ KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'true', AWS_REGION: 'us-east-1', KAFKA_SASL_AWS_REGION: REGION });
    expect(config.KAFKA_SASL_AWS_REGION).toBe(REGION);
  });
});
