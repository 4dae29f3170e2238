/**
 * Checks across settings, run once every setting has parsed. Each problem is one line that starts
 * with the setting to change; none echoes a value that could be a secret.
 */
import { createSecureContext } from 'node:tls';
import type { Config } from './config.ts';

export function crossChecks(c: Config): string[] {
  return [...timingChecks(c), ...saslChecks(c), ...tlsChecks(c), ...credentialChecks(c), ...s3Checks(c)];
}

function timingChecks(c: Config): string[] {
  const problems: string[] = [];
  if (c.RETRY_MAX_MS < c.RETRY_INITIAL_MS) problems.push('RETRY_MAX_MS: must be >= RETRY_INITIAL_MS');
  if (c.KAFKA_HEARTBEAT_INTERVAL_MS * 3 > c.KAFKA_SESSION_TIMEOUT_MS) {
    problems.push('KAFKA_HEARTBEAT_INTERVAL_MS: must be at most a third of KAFKA_SESSION_TIMEOUT_MS');
  }
  const writeCalls = c.S3_ON_CONFLICT === 'overwrite' ? 3 : 2;
  if (writeCalls * c.S3_TIMEOUT_MS > c.KAFKA_SESSION_TIMEOUT_MS) {
    problems.push(
      `S3_TIMEOUT_MS: a write is up to ${writeCalls} S3 calls (${writeCalls} x ${c.S3_TIMEOUT_MS} ms), which must fit in KAFKA_SESSION_TIMEOUT_MS (${c.KAFKA_SESSION_TIMEOUT_MS} ms)`,
    );
  }
  return problems;
}

const OAUTH_SETTINGS = [
  'KAFKA_SASL_OAUTHBEARER_TOKEN_URL',
  'KAFKA_SASL_OAUTHBEARER_CLIENT_ID',
  'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET',
  'KAFKA_SASL_OAUTHBEARER_SCOPE',
] as const;

/** Each mechanism gets exactly the settings it uses: a setting another mechanism would use is a mix-up, not something to ignore. */
function saslChecks(c: Config): string[] {
  const problems: string[] = [];
  const mechanism = c.KAFKA_SASL_MECHANISM;
  const usesPassword = mechanism === 'plain' || mechanism === 'scram-sha-256' || mechanism === 'scram-sha-512';
  if (usesPassword && (c.KAFKA_SASL_USERNAME === undefined || c.KAFKA_SASL_PASSWORD === undefined)) {
    problems.push(`KAFKA_SASL_USERNAME: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required when KAFKA_SASL_MECHANISM is ${mechanism}`);
  }
  if ((mechanism === 'oauthbearer' || mechanism === 'aws-msk-iam') && (c.KAFKA_SASL_USERNAME !== undefined || c.KAFKA_SASL_PASSWORD !== undefined)) {
    problems.push(`KAFKA_SASL_USERNAME: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are not used with KAFKA_SASL_MECHANISM=${mechanism}; unset them`);
  }
  if (mechanism === 'oauthbearer') {
    for (const name of OAUTH_SETTINGS.slice(0, 3)) if (c[name] === undefined) problems.push(`${name}: required when KAFKA_SASL_MECHANISM is oauthbearer`);
    const tokenUrl = c.KAFKA_SASL_OAUTHBEARER_TOKEN_URL;
    if (tokenUrl !== undefined && hasUserInfo(tokenUrl)) {
      problems.push(
        'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: must not carry credentials; set KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET',
      );
    }
    // The client secret goes with every request: over plain http only to this machine (a local test IdP).
    if (tokenUrl?.startsWith('http:') && !isLoopback(new URL(tokenUrl).hostname)) {
      problems.push('KAFKA_SASL_OAUTHBEARER_TOKEN_URL: must be https (the client secret is sent with every request), except to a loopback address');
    }
  } else {
    for (const name of OAUTH_SETTINGS) if (c[name] !== undefined) problems.push(`${name}: only used when KAFKA_SASL_MECHANISM is oauthbearer`);
  }
  if (mechanism === 'aws-msk-iam') {
    if (c.KAFKA_SASL_AWS_REGION === undefined) problems.push('KAFKA_SASL_AWS_REGION: required when KAFKA_SASL_MECHANISM is aws-msk-iam (or set AWS_REGION)');
    // MSK's IAM listener (port 9098, 9198 public) is TLS only; the signed token must not travel in clear either.
    if (!c.KAFKA_SSL) problems.push('KAFKA_SSL: must be true with KAFKA_SASL_MECHANISM=aws-msk-iam (the MSK IAM listener is TLS only)');
  }
  return problems;
}

function tlsChecks(c: Config): string[] {
  const problems: string[] = [];
  const files = { KAFKA_SSL_CA_FILE: c.KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE: c.KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: c.KAFKA_SSL_KEY_FILE };
  if (!c.KAFKA_SSL) {
    for (const [name, value] of Object.entries({ ...files, KAFKA_SSL_SERVERNAME: c.KAFKA_SSL_SERVERNAME })) {
      if (value !== undefined) problems.push(`${name}: only used with KAFKA_SSL=true; set it too`);
    }
  }
  if ((c.KAFKA_SSL_CERT_FILE === undefined) !== (c.KAFKA_SSL_KEY_FILE === undefined)) {
    problems.push('KAFKA_SSL_CERT_FILE: KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together');
  }
  if (c.KAFKA_SSL_KEY_PASSWORD !== undefined && c.KAFKA_SSL_KEY_FILE === undefined) problems.push('KAFKA_SSL_KEY_PASSWORD: only used with KAFKA_SSL_KEY_FILE');
  if (problems.length === 0) {
    const problem = secureContextProblem(c);
    if (problem !== undefined) problems.push(problem);
  }
  if (c.SCHEMA_REGISTRY_CA_FILE !== undefined && !c.SCHEMA_REGISTRY_URL.startsWith('https:')) {
    problems.push('SCHEMA_REGISTRY_CA_FILE: only used with an https SCHEMA_REGISTRY_URL');
  }
  return problems;
}

/**
 * Node builds the TLS context from the files now, as it will for each connection: a corrupt PEM, a
 * wrong passphrase or a key that is not the certificate's fails here, naming the setting. OpenSSL's
 * reasons ("bad decrypt", "key values mismatch") never contain key material.
 */
function secureContextProblem(c: Config): string | undefined {
  const ca = c.KAFKA_SSL_CA_FILE?.contents;
  const cert = c.KAFKA_SSL_CERT_FILE?.contents;
  const key = c.KAFKA_SSL_KEY_FILE?.contents;
  try {
    createSecureContext({
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(c.KAFKA_SSL_KEY_PASSWORD === undefined ? {} : { passphrase: c.KAFKA_SSL_KEY_PASSWORD }),
    });
    return undefined;
  } catch (error) {
    let reason = error instanceof Error ? error.message : String(error);
    if (c.KAFKA_SSL_KEY_PASSWORD !== undefined) reason = reason.replaceAll(c.KAFKA_SSL_KEY_PASSWORD, '<redacted>');
    if (/bad decrypt|bad password|interrupted or cancelled|maybe wrong password/i.test(reason)) {
      return `KAFKA_SSL_KEY_PASSWORD: cannot decrypt KAFKA_SSL_KEY_FILE (${c.KAFKA_SSL_KEY_PASSWORD === undefined ? 'the key is encrypted and no passphrase is set' : 'wrong passphrase'})`;
    }
    if (/key values mismatch/i.test(reason)) return 'KAFKA_SSL_KEY_FILE: is not the private key of KAFKA_SSL_CERT_FILE';
    const setting = key !== undefined || cert !== undefined ? 'KAFKA_SSL_KEY_FILE' : 'KAFKA_SSL_CA_FILE';
    return `${setting}: Node cannot build a TLS context from KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE: ${reason}`;
  }
}

function credentialChecks(c: Config): string[] {
  const problems: string[] = [];
  if ((c.S3_ACCESS_KEY_ID === undefined) !== (c.S3_SECRET_ACCESS_KEY === undefined)) {
    problems.push('S3_ACCESS_KEY_ID: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together');
  }
  if ((c.SCHEMA_REGISTRY_USERNAME === undefined) !== (c.SCHEMA_REGISTRY_PASSWORD === undefined)) {
    problems.push('SCHEMA_REGISTRY_USERNAME: SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together');
  }
  // S3 signs with keys, never with URL credentials (MinIO's mc takes http://key:secret@host; the SDK does not).
  if (c.S3_ENDPOINT !== '' && hasUserInfo(c.S3_ENDPOINT)) {
    problems.push('S3_ENDPOINT: must not carry credentials; set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY');
  }
  for (const d of c.S3_DESTINATIONS ?? []) {
    if (d.endpoint !== undefined && d.endpoint !== '' && hasUserInfo(d.endpoint)) {
      problems.push(`S3_DESTINATIONS: the endpoint of ${d.name} must not carry credentials; set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY`);
    }
  }
  return problems;
}

function s3Checks(c: Config): string[] {
  // Two destinations writing the same keys would each see the other's object as its own re-delivery.
  const places = (c.S3_DESTINATIONS ?? []).map((d) => `${d.endpoint ?? c.S3_ENDPOINT} ${d.bucket}/${d.prefix ?? c.S3_PREFIX}`);
  const twice = places.findIndex((p, i) => places.indexOf(p) !== i);
  if (twice >= 0) return [`S3_DESTINATIONS: ${c.S3_DESTINATIONS?.[twice]?.name} writes to the same bucket and prefix as another destination`];
  if (c.S3_SSE === 'aws:kms' && c.S3_SSE_KMS_KEY_ID === undefined) return ['S3_SSE_KMS_KEY_ID: required when S3_SSE is aws:kms'];
  if (c.S3_SSE !== 'aws:kms' && c.S3_SSE_KMS_KEY_ID !== undefined) return ['S3_SSE_KMS_KEY_ID: only used when S3_SSE is aws:kms'];
  return [];
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** The value already parsed as a URL. */
function hasUserInfo(url: string): boolean {
  const parsed = new URL(url);
  return parsed.username !== '' || parsed.password !== '';
}
