/**
 * Amazon MSK IAM authentication: SASL/OAUTHBEARER whose token is a SigV4-presigned
 * `kafka-cluster:Connect` request, base64url-encoded, made by AWS's own signer
 * (aws-msk-iam-sasl-signer-js) with the default AWS credential chain (environment, web identity /
 * IRSA, ECS task role, EC2 instance profile, profile). kafkajs' built-in `aws` mechanism is a
 * different protocol, which MSK does not speak.
 *
 * The signer and the credential chain are loaded on first use: they pull in the STS client, which
 * no other mechanism needs.
 */
import type { GenerateAuthTokenFromCredentialOptions } from 'aws-msk-iam-sasl-signer-js';
import { scrub } from '../redact.ts';
import { type IssuedToken, type OauthBearerToken, RefreshingToken, TokenError } from './token-cache.ts';

export type CredentialsProvider = GenerateAuthTokenFromCredentialOptions['awsCredentialsProvider'];
type Credentials = Awaited<ReturnType<CredentialsProvider>>;

export interface MskIamSettings {
  readonly region: string;
  /** The default AWS chain when absent; tests pass fixed credentials. */
  readonly credentials?: CredentialsProvider;
}

/** kafkajs' oauthBearerProvider for KAFKA_SASL_MECHANISM=aws-msk-iam. */
export function mskIamProvider(settings: MskIamSettings, now: () => number = Date.now): () => Promise<OauthBearerToken> {
  let credentials = settings.credentials;
  const token = new RefreshingToken(async () => {
    credentials ??= await defaultCredentialChain(settings.region);
    return signMskIamToken(settings.region, credentials);
  }, now);
  return () => token.get();
}

/**
 * One token. It expires with the signature (15 minutes) or with the credentials that signed it,
 * whichever is first, so the cache replaces it before either runs out. The signer itself would
 * shorten the signature to the credentials' remaining lifetime, but signer 1.0.3 writes that as a
 * fractional X-Amz-Expires (e.g. 299.998), which AWS refuses; so it is given the credentials without
 * their expiry, signs for a whole 900 s, and the expiry is applied here instead.
 */
export async function signMskIamToken(region: string, credentials: CredentialsProvider): Promise<IssuedToken> {
  let creds: Credentials | undefined;
  try {
    creds = await credentials();
    const { expiration, ...withoutExpiry } = creds;
    const { generateAuthTokenFromCredentialsProvider } = await import('aws-msk-iam-sasl-signer-js');
    const signed = await generateAuthTokenFromCredentialsProvider({ region, awsCredentialsProvider: async () => withoutExpiry });
    const expiresAtMs = Math.min(signed.expiryTime, expiration?.getTime() ?? Number.POSITIVE_INFINITY);
    return { value: signed.token, expiresAtMs };
  } catch (error) {
    // Which credential source failed, or the signer's own reason. Retryable: an instance profile or
    // a web identity endpoint that did not answer comes back. No `cause`: the message is scrubbed,
    // an SDK error object is not.
    const reason = scrubbed(error instanceof Error ? error.message : String(error), creds);
    throw new TokenError(`aws-msk-iam: cannot sign an MSK IAM token for region ${region} (AWS credentials, KAFKA_SASL_AWS_REGION): ${reason}`, true);
  }
}

async function defaultCredentialChain(region: string): Promise<CredentialsProvider> {
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  // Memoized by the SDK: credentials are fetched again only when they near their expiry.
  return fromNodeProviderChain({ clientConfig: { region } });
}

/** The secret key and session token never leave this module, even inside an error message. */
function scrubbed(text: string, creds: Credentials | undefined): string {
  return scrub(text, [creds?.secretAccessKey ?? '', creds?.sessionToken ?? '']);
}
