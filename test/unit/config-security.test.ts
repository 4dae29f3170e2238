/**
 * The security settings: files read at start, each mechanism's settings, and the cross-checks that
 * name what to fix. Secrets are fed in and must not come back out.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, redactedConfig } from '../../src/config.ts';
import { PemFile } from '../../src/config-files.ts';
import { ConfigError } from '../../src/errors.ts';
import { thrownBy } from '../support/thrown.ts';
import { makeTlsFixtures, type TlsFixtures } from '../support/tls-fixtures.ts';

let f: TlsFixtures;
beforeAll(() => {
  f = makeTlsFixtures();
});
afterAll(() => f.remove());

function problems(env: Record<string, string>): string {
  return thrownBy(ConfigError, () => loadConfig(env)).message;
}

const OAUTH = {
  KAFKA_SASL_MECHANISM: 'oauthbearer',
  KAFKA_SASL_OAUTHBEARER_TOKEN_URL: 'https://idp.example.com/oauth2/token',
  KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'sink',
  KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: 'oauth-client-s3cret',
};

describe('PEM file settings', () => {
  it('reads the files at start and keeps path and contents', () => {
    const c = loadConfig({
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: f.caFile,
      SCHEMA_REGISTRY_URL: 'https://registry.example.com',
      SCHEMA_REGISTRY_CA_FILE: f.caFile,
    });
    expect(c.KAFKA_SSL_CA_FILE?.path).toBe(f.caFile);
    expect(c.KAFKA_SSL_CA_FILE?.contents.equals(f.read(f.caFile))).toBe(true);
    expect(c.SCHEMA_REGISTRY_CA_FILE?.path).toBe(f.caFile);
  });

  it('leaves them unset by default', () => {
    const c = loadConfig({});
    expect(c.KAFKA_SSL_CA_FILE).toBeUndefined();
    expect(c.KAFKA_SSL_KEY_FILE).toBeUndefined();
    expect(c.SCHEMA_REGISTRY_CA_FILE).toBeUndefined();
  });

  it.each([
    ['a missing file', () => join(f.dir, 'nope.pem'), 'cannot read the file (ENOENT)'],
    ['a directory', () => f.dir, 'cannot read the file (EISDIR)'],
    ['a key where a certificate belongs', () => f.clientPlainKeyFile, 'not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)'],
  ])('refuses %s, naming the setting and the path', (_what, path, reason) => {
    expect(problems({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: path() })).toBe(`invalid configuration: KAFKA_SSL_CA_FILE=${JSON.stringify(path())}: ${reason}`);
  });

  it('refuses a certificate block OpenSSL cannot parse (it would otherwise trust nothing, silently)', () => {
    const path = join(f.dir, 'garbage.pem');
    writeFileSync(path, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    expect(problems({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: path })).toMatch(/^invalid configuration: KAFKA_SSL_CA_FILE=".*": not a valid PEM certificate \(/);
  });

  it('refuses a certificate where the key belongs', () => {
    expect(problems({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: f.clientCertFile, KAFKA_SSL_KEY_FILE: f.clientCertFile })).toContain('KAFKA_SSL_KEY_FILE=');
  });

  it('never echoes PEM text pasted where a path belongs (it may be a private key)', () => {
    const key = f.read(f.clientPlainKeyFile).toString();
    const message = problems({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: f.clientCertFile, KAFKA_SSL_KEY_FILE: key });
    expect(message).toBe('invalid configuration: KAFKA_SSL_KEY_FILE=<redacted>: expected the path of a PEM private key file, not the PEM text itself');
    expect(message).not.toContain(key.split('\n')[1] ?? 'x');
  });

  it('serialises a PemFile as its path: JSON, util.inspect and redactedConfig never show the key', () => {
    const c = loadConfig({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: f.clientCertFile, KAFKA_SSL_KEY_FILE: f.clientPlainKeyFile });
    const keyBody = f.read(f.clientPlainKeyFile).toString().split('\n')[1] ?? 'x';
    expect(c.KAFKA_SSL_KEY_FILE).toBeInstanceOf(PemFile);
    expect(redactedConfig(c).KAFKA_SSL_KEY_FILE).toBe(f.clientPlainKeyFile);
    for (const text of [JSON.stringify(c), JSON.stringify(redactedConfig(c)), inspect(c, { depth: 5 })]) expect(text).not.toContain(keyBody);
  });
});

describe('Kafka TLS cross-checks', () => {
  it('accepts mTLS with an encrypted key and its passphrase', () => {
    expect(() =>
      loadConfig({
        KAFKA_SSL: 'true',
        KAFKA_SSL_CA_FILE: f.caFile,
        KAFKA_SSL_CERT_FILE: f.clientCertFile,
        KAFKA_SSL_KEY_FILE: f.clientKeyFile,
        KAFKA_SSL_KEY_PASSWORD: f.clientKeyPassphrase,
        KAFKA_SSL_SERVERNAME: 'kafka.internal.example.com',
      }),
    ).not.toThrow();
  });

  it.each([
    ['a CA file without KAFKA_SSL', () => ({ KAFKA_SSL_CA_FILE: f.caFile }), 'KAFKA_SSL_CA_FILE: only used with KAFKA_SSL=true; set it too'],
    ['a server name without KAFKA_SSL', () => ({ KAFKA_SSL_SERVERNAME: 'a.example.com' }), 'KAFKA_SSL_SERVERNAME: only used with KAFKA_SSL=true'],
    [
      'a certificate without its key',
      () => ({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: f.clientCertFile }),
      'KAFKA_SSL_CERT_FILE: KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together',
    ],
    [
      'a passphrase without a key',
      () => ({ KAFKA_SSL: 'true', KAFKA_SSL_KEY_PASSWORD: 'pw-1234' }),
      'KAFKA_SSL_KEY_PASSWORD: only used with KAFKA_SSL_KEY_FILE',
    ],
    [
      'an encrypted key without its passphrase',
      () => ({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: f.clientCertFile, KAFKA_SSL_KEY_FILE: f.clientKeyFile }),
      'KAFKA_SSL_KEY_PASSWORD: cannot decrypt KAFKA_SSL_KEY_FILE (the key is encrypted and no passphrase is set)',
    ],
    [
      'a wrong passphrase',
      () => ({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: f.clientCertFile, KAFKA_SSL_KEY_FILE: f.clientKeyFile, KAFKA_SSL_KEY_PASSWORD: 'wrong-passphrase' }),
      'KAFKA_SSL_KEY_PASSWORD: cannot decrypt KAFKA_SSL_KEY_FILE (wrong passphrase)',
    ],
    [
      'a key that is not the certificate’s',
      () => ({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: f.serverCertFile, KAFKA_SSL_KEY_FILE: f.clientPlainKeyFile }),
      'KAFKA_SSL_KEY_FILE: is not the private key of KAFKA_SSL_CERT_FILE',
    ],
    ['a server name that is not a host name', () => ({ KAFKA_SSL: 'true', KAFKA_SSL_SERVERNAME: 'https://a.example.com' }), 'expected a host name'],
  ])('refuses %s', (_what, env, expected) => {
    const message = problems(env());
    expect(message).toContain(expected);
    expect(message).not.toContain('wrong-passphrase');
    expect(message).not.toContain('pw-1234');
  });
});

describe('SASL cross-checks', () => {
  it('accepts oauthbearer with a token URL, client id and secret (scope optional)', () => {
    expect(loadConfig(OAUTH).KAFKA_SASL_MECHANISM).toBe('oauthbearer');
    expect(loadConfig({ ...OAUTH, KAFKA_SASL_OAUTHBEARER_SCOPE: 'kafka' }).KAFKA_SASL_OAUTHBEARER_SCOPE).toBe('kafka');
  });

  it.each(['http://127.0.0.1:8080/token', 'http://localhost/token', 'http://[::1]:8080/token'])('accepts a plain-http token URL to this machine: %s', (url) => {
    expect(() => loadConfig({ ...OAUTH, KAFKA_SASL_OAUTHBEARER_TOKEN_URL: url })).not.toThrow();
  });

  it('accepts aws-msk-iam over TLS with a region, and takes AWS_REGION when KAFKA_SASL_AWS_REGION is unset', () => {
    expect(loadConfig({ KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'true', AWS_REGION: 'eu-west-1' }).KAFKA_SASL_AWS_REGION).toBe('eu-west-1');
  });

  it.each([
    [
      'oauthbearer without its settings',
      { KAFKA_SASL_MECHANISM: 'oauthbearer' },
      'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: required when KAFKA_SASL_MECHANISM is oauthbearer',
    ],
    ['oauthbearer without a client secret', { ...OAUTH, KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: '' }, 'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: required'],
    [
      'oauthbearer with a user name',
      { ...OAUTH, KAFKA_SASL_USERNAME: 'u' },
      'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are not used with KAFKA_SASL_MECHANISM=oauthbearer',
    ],
    [
      'credentials in the token URL',
      { ...OAUTH, KAFKA_SASL_OAUTHBEARER_TOKEN_URL: 'https://sink:oauth-url-s3cret@idp.example.com/token' },
      'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: must not carry credentials',
    ],
    [
      'a plain-http token URL to another machine',
      { ...OAUTH, KAFKA_SASL_OAUTHBEARER_TOKEN_URL: 'http://idp.example.com/token' },
      'KAFKA_SASL_OAUTHBEARER_TOKEN_URL: must be https (the client secret is sent with every request), except to a loopback address',
    ],
    [
      'OAuth settings with another mechanism',
      { KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'sink' },
      'KAFKA_SASL_OAUTHBEARER_CLIENT_ID: only used when KAFKA_SASL_MECHANISM is oauthbearer',
    ],
    [
      'aws-msk-iam without a region',
      { KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'true' },
      'KAFKA_SASL_AWS_REGION: required when KAFKA_SASL_MECHANISM is aws-msk-iam',
    ],
    [
      'aws-msk-iam without TLS',
      { KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SASL_AWS_REGION: 'eu-west-1' },
      'KAFKA_SSL: must be true with KAFKA_SASL_MECHANISM=aws-msk-iam',
    ],
    [
      'aws-msk-iam with a password',
      { KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'true', KAFKA_SASL_AWS_REGION: 'eu-west-1', KAFKA_SASL_PASSWORD: 'sasl-s3cret' },
      'not used with KAFKA_SASL_MECHANISM=aws-msk-iam',
    ],
  ])('refuses %s', (_what, env, expected) => {
    const message = problems(env);
    expect(message).toContain(expected);
    for (const secret of ['oauth-client-s3cret', 'oauth-url-s3cret', 'sasl-s3cret']) expect(message).not.toContain(secret);
  });
});

describe('registry and S3 cross-checks', () => {
  it.each([
    [
      'a registry CA for an http registry',
      () => ({ SCHEMA_REGISTRY_CA_FILE: f.caFile }),
      'SCHEMA_REGISTRY_CA_FILE: only used with an https SCHEMA_REGISTRY_URL',
    ],
    ['aws:kms without a key id', () => ({ S3_SSE: 'aws:kms' }), 'S3_SSE_KMS_KEY_ID: required when S3_SSE is aws:kms'],
    ['a key id with AES256', () => ({ S3_SSE: 'AES256', S3_SSE_KMS_KEY_ID: 'alias/x' }), 'S3_SSE_KMS_KEY_ID: only used when S3_SSE is aws:kms'],
    ['a key id without SSE', () => ({ S3_SSE_KMS_KEY_ID: 'alias/x' }), 'S3_SSE_KMS_KEY_ID: only used when S3_SSE is aws:kms'],
    [
      'credentials in S3_ENDPOINT (S3 signs with keys, never URL credentials)',
      () => ({ S3_ENDPOINT: 'http://local-access-key:local-secret-key@127.0.0.1:9000' }),
      'S3_ENDPOINT: must not carry credentials; set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY',
    ],
    ['an unknown S3_SSE', () => ({ S3_SSE: 'aws:kms:dsse' }), 'S3_SSE="aws:kms:dsse"'],
  ])('refuses %s', (_what, env, expected) => {
    const message = problems(env());
    expect(message).toContain(expected);
    expect(message).not.toContain('local-secret-key');
  });

  it.each([
    ['none', {}],
    ['AES256', { S3_SSE: 'AES256' }],
    ['aws:kms with a key', { S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:111122223333:key/abcd' }],
  ])('accepts S3_SSE %s', (_what, env) => {
    expect(() => loadConfig(env)).not.toThrow();
  });
});
