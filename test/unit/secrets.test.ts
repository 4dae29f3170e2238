/**
 * Secrets never come back out: settings tried as a new user would (credentials in every URL
 * setting, a forgotten host, a stray `%`), through the real CLI's exit-2 line, the startup log's
 * redactedConfig and the errors the adapters throw.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactedConfig, redactSecrets, redactUserInfo } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { registryEndpoint } from '../../src/registry-client.ts';
import { thrownBy } from '../support/thrown.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const node = `${root}node_modules/.bin/node`;

/** Runs `tow-and-go consume` with `env` added; brokers that do not exist, in case a config passes. */
function cli(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      node,
      ['src/cli.ts', 'consume'],
      { cwd: root, env: { PATH: process.env.PATH ?? '', KAFKA_BROKERS: '127.0.0.1:1', HTTP_PORT: '0', ...env }, timeout: 15_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr }),
    );
  });
}

const SECRET = 'Sup3r$ecret';

describe('the exit-2 line of `tow-and-go consume`, for URL settings as a new user would write them', () => {
  it.each<[string, Record<string, string>]>([
    ['a space in the registry host', { SCHEMA_REGISTRY_URL: `https://user:${SECRET}@regi stry.example.com` }],
    ['a registry URL whose host was forgotten', { SCHEMA_REGISTRY_URL: `https://user:${SECRET}` }],
    ['a registry URL without a scheme', { SCHEMA_REGISTRY_URL: `user:${SECRET}@registry.example.com` }],
    ['a bad registry port', { SCHEMA_REGISTRY_URL: `https://user:${SECRET}@registry.example.com:99999/apis` }],
    ['a / in the registry password', { SCHEMA_REGISTRY_URL: `https://user:pa/${SECRET}@registry.example.com` }],
    ['a space in the registry password and host', { SCHEMA_REGISTRY_URL: `https://user:pa ss${SECRET}@host .example.com` }],
    ['MinIO-style credentials in S3_ENDPOINT', { S3_ENDPOINT: `http://local-access-key:${SECRET}@127.0.0.1:9000` }],
    ['S3_ENDPOINT credentials without a scheme', { S3_ENDPOINT: `local-access-key:${SECRET}@minio:9000` }],
    ['Java-style SASL_SSL:// brokers with credentials', { KAFKA_BROKERS: `SASL_SSL://user:${SECRET}@broker.example.com:9096` }],
    ['credentials in front of a broker', { KAFKA_BROKERS: `b-1.example.com:9096,user:${SECRET}@b-2.example.com:9096` }],
    [
      'credentials in the OAuth token URL',
      {
        KAFKA_SASL_MECHANISM: 'oauthbearer',
        KAFKA_SASL_OAUTHBEARER_TOKEN_URL: `https://sink:${SECRET}@idp.example.com/token`,
        KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'sink',
        KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: SECRET,
      },
    ],
    ['a SASL password next to a bad setting', { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET, HTTP_PORT: 'x' }],
    ['a SASL password with a mechanism that does not use one', { KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SASL_PASSWORD: SECRET }],
    ['a wrong TLS key passphrase', { KAFKA_SSL: 'true', KAFKA_SSL_KEY_PASSWORD: SECRET }],
    ['an S3 secret without its key id', { S3_SECRET_ACCESS_KEY: SECRET }],
    ['a registry password without a user', { SCHEMA_REGISTRY_PASSWORD: SECRET }],
  ])('%s: exit 2, one line, no secret', async (_what, env) => {
    const { code, stdout, stderr } = await cli(env);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^tow-and-go: invalid configuration: [^\n]+\n$/);
    expect(stderr).not.toContain(SECRET);
    expect(stderr).not.toContain(encodeURIComponent(SECRET));
  });
});

describe('redactedConfig (the startup log line) for URL credentials that parse', () => {
  it.each([
    [`https://user:pa ss${SECRET}@registry.example.com/apis`, 'https://<redacted>@registry.example.com/apis'],
    [`https://user:p%ss${SECRET}@registry.example.com`, 'https://<redacted>@registry.example.com'],
    [`https://user:${SECRET}@@registry.example.com`, 'https://<redacted>@registry.example.com'],
  ])('%s', (url, shown) => {
    const out = redactedConfig(loadConfig({ SCHEMA_REGISTRY_URL: url }));
    expect(out.SCHEMA_REGISTRY_URL).toBe(shown);
    expect(JSON.stringify(out)).not.toContain(SECRET);
  });

  it('redacts every secret setting', () => {
    const c = loadConfig({
      KAFKA_SASL_MECHANISM: 'oauthbearer',
      KAFKA_SASL_OAUTHBEARER_TOKEN_URL: 'https://idp.example.com/token',
      KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'sink',
      KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: `${SECRET}-oauth`,
      SCHEMA_REGISTRY_USERNAME: 'key',
      SCHEMA_REGISTRY_PASSWORD: `${SECRET}-registry`,
      S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      S3_SECRET_ACCESS_KEY: `${SECRET}-s3`,
    });
    const text = JSON.stringify(redactedConfig(c));
    expect(text).not.toContain(SECRET);
    expect(redactedConfig(c).KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET).toBe('<redacted>');
  });
});

describe('registryEndpoint with a password as typed', () => {
  it('keeps a stray % as typed instead of failing with "URI malformed"', () => {
    expect(registryEndpoint({ url: `https://user:p%ss${SECRET}@registry.example.com`, timeoutMs: 100 }).auth).toEqual({
      username: 'user',
      password: `p%ss${SECRET}`,
    });
  });
});

describe('redactUserInfo (bad values on the error line)', () => {
  it.each([
    [`https://user:${SECRET}`, 'https://<redacted>'],
    [`https://user:${SECRET}/apis`, 'https://<redacted>/apis'],
    ['https://registry.example.com:99999', 'https://registry.example.com:99999'],
    ['http://[::1]:99999', 'http://[::1]:99999'],
    ['https://registry.example.com:80a', 'https://<redacted>'],
    ['localhost:9000', 'localhost:9000'],
  ])('%s → %s', (raw, shown) => {
    expect(redactUserInfo(raw)).toBe(shown);
  });
});

describe('redactSecrets (the last line of defence on the exit line)', () => {
  const env = {
    KAFKA_SASL_PASSWORD: `${SECRET}-sasl`,
    SCHEMA_REGISTRY_URL: `https://user:pa ss${SECRET}@registry.example.com`,
    S3_ENDPOINT: `http://key:p%40${SECRET}@minio:9000`,
    KAFKA_SSL_KEY_PASSWORD: 'abc',
  };

  it('replaces the value of every secret setting and every URL password, as typed, decoded and re-encoded', () => {
    const line = [`${SECRET}-sasl`, `pa ss${SECRET}`, `pa%20ss${SECRET}`, `p%40${SECRET}`, `p@${SECRET}`].join(' | ');
    const out = redactSecrets(line, env);
    expect(out).not.toContain(SECRET);
    expect(out).toBe('<redacted> | <redacted> | <redacted> | <redacted> | <redacted>');
  });

  it('leaves values too short to matter, and everything else', () => {
    expect(redactSecrets('abc: connection refused', env)).toBe('abc: connection refused');
  });

  it('is what a ConfigError line already satisfies', () => {
    const message = thrownBy(ConfigError, () => loadConfig({ ...env, HTTP_PORT: 'x' })).message;
    expect(redactSecrets(message, env)).toBe(message);
  });
});
