/** The S3 start-up check (preflight.ts): HeadBucket, and a read probe when HEAD answers a bare 403. */
import { GetObjectCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { describeError } from './errors.ts';
import { CHECK_TIMEOUT_MS, type Check, down, type Outcome, ok, refusal } from './preflight-outcome.ts';
import { refused, type TlsSettings, tlsRefusal } from './refusals.ts';
import { httpStatus, RETRYABLE_S3_STATUSES } from './sink/s3.ts';

export interface S3CheckSettings {
  readonly bucket: string;
  /** Where the snapshots go: the second probe reads a key under it. */
  readonly prefix: string;
}

const S3_TLS: TlsSettings = {
  ca: ['S3_ENDPOINT', 'NODE_EXTRA_CA_CERTS'],
  name: ['S3_ENDPOINT'],
  clientCertificate: [],
  endpoint: ['S3_ENDPOINT'],
};
const CREDENTIAL_SETTINGS = ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'the AWS credential chain'];
/** S3's error codes for credentials it does not accept (as opposed to AccessDenied: accepted, not allowed). */
const CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidSecurity',
  'InvalidClientTokenId',
]);
/** A key no snapshot ever has (snapshots are <prefix><last_modified>.json). */
export const S3_PROBE_KEY = 'tow-and-go-start-up-check';

/**
 * HeadBucket on S3_BUCKET. HeadBucket needs s3:ListBucket, which the sink itself does not (README,
 * "Running against AWS"), and its 403 has no body, so it cannot tell a wrong secret key from a
 * missing s3:ListBucket. On a 403 the check therefore also reads a key that never exists under
 * S3_PREFIX (GetObject, whose error body names the reason): SignatureDoesNotMatch or
 * InvalidAccessKeyId is refused; AccessDenied means the credentials are good, and whether they may
 * write is left to the first write (a warning says so).
 */
export function s3Check(client: () => S3Client, s: S3CheckSettings, timeoutMs = CHECK_TIMEOUT_MS): Check {
  return { dependency: 's3', run: () => checkS3(client(), s, timeoutMs) };
}

async function checkS3(client: S3Client, s: S3CheckSettings, timeoutMs: number): Promise<Outcome> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: s.bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
    return ok;
  } catch (head) {
    const outcome = s3Outcome(head, s, 'HeadBucket');
    if (httpStatus(head) !== 403) return outcome;
    try {
      await client.send(new GetObjectCommand({ Bucket: s.bucket, Key: `${s.prefix}${S3_PROBE_KEY}`, Range: 'bytes=0-0' }), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
      return ok;
    } catch (get) {
      return s3Outcome(get, s, 'GetObject');
    }
  } finally {
    client.destroy();
  }
}

/**
 * - 200 (or, for the GetObject probe, 404 NoSuchKey): ok;
 * - 404 (NoSuchBucket): refused, S3_BUCKET (or S3_ENDPOINT: another store);
 * - 301 (PermanentRedirect), 400 (AuthorizationHeaderMalformed: the wrong region): refused, S3_REGION / S3_ENDPOINT;
 * - 403 on HeadBucket: see s3Check; 403 with a credentials code: refused, the credentials;
 *   403 AccessDenied on the GetObject probe: ok, with a warning;
 * - no credentials at all (CredentialsProviderError): refused, the credentials;
 * - TLS verification failures: refused, S3_ENDPOINT (and NODE_EXTRA_CA_CERTS for a private CA);
 * - 408, 425, 429, 5xx, connection refused, timeout: down.
 */
export function s3Outcome(error: unknown, s: S3CheckSettings, operation: 'HeadBucket' | 'GetObject'): Outcome {
  const status = httpStatus(error);
  const code = s3Code(error);
  const reason = `${operation}: ${status === undefined ? '' : `HTTP ${status} `}${code}${s3Message(error, code)}`;
  const bucket = `bucket ${s.bucket}`;
  if (status === undefined) {
    if (error instanceof Error && error.name === 'CredentialsProviderError') {
      return refusal(
        refused(
          's3',
          { refused: 'the request', problem: 'no AWS credentials found', check: CREDENTIAL_SETTINGS, reason: `${error.name}: ${error.message}` },
          error,
        ),
      );
    }
    const tls = tlsRefusal(error, S3_TLS);
    if (tls !== undefined) return refusal(refused('s3', { refused: 'the connection', ...tls }, error));
    return down(s3NetworkReason(error));
  }
  if (RETRYABLE_S3_STATUSES.has(status) || status >= 500) return down(reason);
  if (operation === 'GetObject' && status === 404 && code !== 'NoSuchBucket') return ok;
  if (status === 404)
    return refusal(refused('s3', { refused: `the ${bucket}`, problem: 'it does not exist', check: ['S3_BUCKET', 'S3_ENDPOINT'], reason }, error));
  if (status === 301 || status === 307 || (status === 400 && code === 'AuthorizationHeaderMalformed')) {
    return refusal(
      refused(
        's3',
        { refused: `the ${bucket}`, problem: 'it is in another region or on another endpoint', check: ['S3_REGION', 'S3_ENDPOINT'], reason },
        error,
      ),
    );
  }
  if (status === 403) {
    if (CREDENTIAL_CODES.has(code))
      return refusal(refused('s3', { refused: 'the request', problem: 'the credentials were not accepted', check: CREDENTIAL_SETTINGS, reason }, error));
    if (operation === 'GetObject') {
      return {
        state: 'ok',
        note: `s3 accepted the credentials but refused HeadBucket and a read of ${s.prefix}${S3_PROBE_KEY} (${code}): without s3:ListBucket the start-up check cannot prove access to ${bucket}; the first write will`,
      };
    }
    return refusal(refused('s3', { refused: `the ${bucket}`, problem: 'access denied', check: [...CREDENTIAL_SETTINGS, 'S3_BUCKET'], reason }, error));
  }
  return refusal(
    refused('s3', { refused: `the ${bucket}`, problem: 'the request was refused', check: ['S3_BUCKET', 'S3_ENDPOINT', 'S3_REGION'], reason }, error),
  );
}

/** S3's error code: the SDK's `Code`, else its name ("NotFound", "Unknown" for a HEAD without a body). */
function s3Code(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'Code' in error && typeof error.Code === 'string') return error.Code;
  return error instanceof Error ? error.name : 'UnknownError';
}

/** S3's own message when it sent one (a HEAD has no body: the SDK then says "UnknownError"). */
function s3Message(error: unknown, code: string): string {
  if (!(error instanceof Error) || error.message === '' || error.message === 'UnknownError' || error.message === code) return '';
  return `: ${error.message}`;
}

function s3NetworkReason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time';
  const code = typeof error === 'object' && error !== null && 'code' in error ? ` (${String(error.code)})` : '';
  return `${describeError(error)}${code}`;
}
