import { describe, expect, it } from 'vitest';
import { type Config, LOCAL_S3_ENDPOINT, loadConfig, redactedConfig, redactUserInfo, SETTINGS, withoutUserInfo } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { thrownBy } from '../support/thrown.ts';

function configError(env: Record<string, string>): ConfigError {
  return thrownBy(ConfigError, () => loadConfig(env));
}

describe('loadConfig defaults', () => {
  it('parses every default, so the service starts with no settings against the local stack', () => {
    const c = loadConfig({});
    expect(c.KAFKA_BROKERS).toEqual(['127.0.0.1:9092']);
    expect(c.KAFKA_FROM_BEGINNING).toBe(true);
    expect(c.KAFKA_SSL).toBe(false);
    expect(c.KAFKA_SASL_MECHANISM).toBe('none');
    expect(c.KAFKA_SASL_USERNAME).toBeUndefined();
    expect(c.KAFKA_SASL_PASSWORD).toBeUndefined();
    expect(c.S3_ENDPOINT).toBe(LOCAL_S3_ENDPOINT);
    expect(c.S3_PREFIX).toBe('tow-and-go/');
    expect(c.S3_ON_CONFLICT).toBe('dlq');
    expect(c.MAX_PAYLOAD_BYTES).toBe(4_194_304);
    expect(c.INFLIGHT_PER_PARTITION).toBe(8);
    expect(c.HTTP_PORT).toBe(9464);
    expect(c.LOG_LEVEL).toBe('info');
  });

  it('has a value for every setting', () => {
    const c = loadConfig({});
    for (const name of Object.keys(SETTINGS)) expect(Object.hasOwn(c, name), name).toBe(true);
  });

  it('gives every setting a one-sentence description', () => {
    for (const [name, spec] of Object.entries(SETTINGS)) expect(spec.description, name).toMatch(/^\S.*\.$/);
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });

  it('ignores environment variables it does not know', () => {
    expect(loadConfig({ UNRELATED: 'x', PATH: '/bin' }).KAFKA_TOPIC).toBe('tow-and-go.updates');
  });
});

describe('loadConfig parsing', () => {
  it('splits, trims and drops empty entries of the broker list', () => {
    expect(loadConfig({ KAFKA_BROKERS: ' a:9092, b.example.com:19092 ,,' }).KAFKA_BROKERS).toEqual(['a:9092', 'b.example.com:19092']);
  });

  it.each([
    ['true', true],
    ['1', true],
    ['false', false],
    ['0', false],
  ])('reads the boolean %j as %s', (raw, expected) => {
    expect(loadConfig({ KAFKA_SSL: raw }).KAFKA_SSL).toBe(expected);
  });

  it.each([
    ['HTTP_PORT', '0', 0],
    ['HTTP_PORT', '65535', 65535],
    ['INFLIGHT_PER_PARTITION', '1', 1],
    ['MAX_PAYLOAD_BYTES', '64', 64],
    ['PROGRESS_INTERVAL_MS', '0', 0],
  ] as const)('accepts %s=%s at the edge of its range', (name, raw, expected) => {
    expect(loadConfig({ [name]: raw })[name]).toBe(expected);
  });

  it.each([
    ['S3_PREFIX', ''],
    ['S3_PREFIX', 'a/b/'],
    ['S3_ENDPOINT', ''],
    ['S3_ENDPOINT', 'https://s3.eu-west-1.amazonaws.com'],
    ['SCHEMA_REGISTRY_URL', 'https://registry.example.com'],
    ['S3_BUCKET', 'my.bucket-01'],
  ] as const)('accepts %s=%j', (name, raw) => {
    expect(loadConfig({ [name]: raw })[name]).toBe(raw);
  });

  it.each([
    ['KAFKA_BROKERS', 'localhost', 'expected host:port'],
    ['KAFKA_BROKERS', ' , ', 'expected at least one host:port'],
    ['KAFKA_SSL', 'yes', ''],
    ['KAFKA_SSL', 'TRUE', ''],
    ['KAFKA_TOPIC', '', ''],
    ['KAFKA_SASL_MECHANISM', 'gssapi', ''],
    ['HTTP_PORT', '65536', ''],
    ['HTTP_PORT', '-1', ''],
    ['HTTP_PORT', 'abc', ''],
    ['INFLIGHT_PER_PARTITION', '0', ''],
    ['INFLIGHT_PER_PARTITION', '1.5', ''],
    ['MAX_PAYLOAD_BYTES', '63', ''],
    ['SCHEMA_REGISTRY_URL', 'ftp://registry.example.com', ''],
    ['SCHEMA_REGISTRY_URL', 'not a url', ''],
    ['S3_ENDPOINT', 'localhost:9000', ''],
    ['S3_BUCKET', 'My_Bucket', 'not a valid S3 bucket name'],
    ['S3_BUCKET', 'ab', 'not a valid S3 bucket name'],
    ['S3_PREFIX', '/abs/', 'must be empty or end with "/"'],
    ['S3_PREFIX', 'no-slash', 'must be empty or end with "/"'],
    ['S3_ON_CONFLICT', 'ignore', ''],
    ['LOG_LEVEL', 'verbose', ''],
  ])('rejects %s=%j with a ConfigError naming the variable', (name, raw, reason) => {
    const error = configError({ [name]: raw });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`${name}=${JSON.stringify(raw)}: `);
    expect(error.message).toContain(reason);
  });

  it('reports every bad variable in one error', () => {
    const error = configError({ HTTP_PORT: 'x', S3_BUCKET: 'BAD', LOG_LEVEL: 'loud' });
    expect(error.message).toMatch(/^invalid configuration: /);
    expect(error.message).toContain('HTTP_PORT=');
    expect(error.message).toContain('S3_BUCKET=');
    expect(error.message).toContain('LOG_LEVEL=');
    expect(error.message.split(' | ')).toHaveLength(3);
  });
});

describe('loadConfig cross-checks', () => {
  it.each([
    ['RETRY_MAX_MS below RETRY_INITIAL_MS', { RETRY_INITIAL_MS: '1000', RETRY_MAX_MS: '500' }, 'RETRY_MAX_MS: must be >= RETRY_INITIAL_MS'],
    [
      'a heartbeat longer than a third of the session',
      { KAFKA_SESSION_TIMEOUT_MS: '9000', KAFKA_HEARTBEAT_INTERVAL_MS: '3001' },
      'KAFKA_HEARTBEAT_INTERVAL_MS: must be at most a third',
    ],
    [
      'a worst-case write (PUT + HEAD) longer than the session',
      { KAFKA_SESSION_TIMEOUT_MS: '10000', S3_TIMEOUT_MS: '5001' },
      'S3_TIMEOUT_MS: a write is up to 2 S3 calls (2 x 5001 ms), which must fit in KAFKA_SESSION_TIMEOUT_MS (10000 ms)',
    ],
    [
      'a worst-case overwrite (PUT + HEAD + PUT) longer than the session',
      { KAFKA_SESSION_TIMEOUT_MS: '30000', S3_TIMEOUT_MS: '10001', S3_ON_CONFLICT: 'overwrite' },
      'S3_TIMEOUT_MS: a write is up to 3 S3 calls',
    ],
    ['SASL without credentials', { KAFKA_SASL_MECHANISM: 'plain' }, 'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required'],
    ['SASL with a user name only', { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_PASSWORD are required'],
    ['an S3 access key without a secret', { S3_ACCESS_KEY_ID: 'AKIA' }, 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together'],
    ['an S3 secret without an access key', { S3_SECRET_ACCESS_KEY: 's' }, 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together'],
    ['a registry user without a password', { SCHEMA_REGISTRY_USERNAME: 'u' }, 'SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together'],
    ['a registry password without a user', { SCHEMA_REGISTRY_PASSWORD: 'p' }, 'SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together'],
  ])('rejects %s', (_name, env, expected) => {
    expect(configError(env).message).toContain(expected);
  });

  it.each([
    ['a write of exactly the session timeout', { KAFKA_SESSION_TIMEOUT_MS: '10000', S3_TIMEOUT_MS: '5000' }],
    ['the defaults with overwrite (3 x 10 s = 30 s)', { S3_ON_CONFLICT: 'overwrite' }],
  ])('accepts %s', (_name, env) => {
    expect(() => loadConfig(env)).not.toThrow();
  });

  it.each([
    ['equal retry bounds', { RETRY_INITIAL_MS: '500', RETRY_MAX_MS: '500' }],
    ['a heartbeat of exactly a third of the session', { KAFKA_SESSION_TIMEOUT_MS: '9000', KAFKA_HEARTBEAT_INTERVAL_MS: '3000', S3_TIMEOUT_MS: '3000' }],
    ['SASL with both credentials', { KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }],
    ['an S3 key pair', { S3_ACCESS_KEY_ID: 'AKIA', S3_SECRET_ACCESS_KEY: 's' }],
    ['a registry user and password', { SCHEMA_REGISTRY_USERNAME: 'u', SCHEMA_REGISTRY_PASSWORD: 'p' }],
  ])('accepts %s', (_name, env) => {
    expect(() => loadConfig(env)).not.toThrow();
  });

  it('treats an empty credential as unset', () => {
    const c = loadConfig({ S3_ACCESS_KEY_ID: '', S3_SECRET_ACCESS_KEY: '' });
    expect(c.S3_ACCESS_KEY_ID).toBeUndefined();
    expect(c.S3_SECRET_ACCESS_KEY).toBeUndefined();
  });

  it('reports per-variable problems without the cross-checks', () => {
    const error = configError({ HTTP_PORT: 'x', RETRY_INITIAL_MS: '1000', RETRY_MAX_MS: '500' });
    expect(error.message).toContain('HTTP_PORT=');
    expect(error.message).not.toContain('RETRY_MAX_MS: must be');
  });
});

describe('redactedConfig', () => {
  // loadConfig refuses credentials in S3_ENDPOINT (S3 never uses them); redaction still covers it.
  it.each(['SCHEMA_REGISTRY_URL', 'S3_ENDPOINT'])('removes credentials embedded in %s but keeps the host', (name) => {
    const out = redactedConfig({ ...loadConfig({}), [name]: 'https://apikey:s3cr3t@registry.example.com:8081/apis' });
    expect(out[name]).toBe('https://<redacted>@registry.example.com:8081/apis');
    expect(JSON.stringify(out)).not.toContain('s3cr3t');
  });

  it('removes a password that itself contains @, up to the last @ of the authority', () => {
    const out = redactedConfig(loadConfig({ SCHEMA_REGISTRY_URL: 'https://user:p@ss@registry.example.com/apis' }));
    expect(out.SCHEMA_REGISTRY_URL).toBe('https://<redacted>@registry.example.com/apis');
    expect(JSON.stringify(out)).not.toContain('ss@');
  });

  const withSecrets: Config = loadConfig({
    KAFKA_SASL_MECHANISM: 'plain',
    KAFKA_SASL_USERNAME: 'kafka-user',
    KAFKA_SASL_PASSWORD: 'kafka-secret',
    SCHEMA_REGISTRY_USERNAME: 'reg-user',
    SCHEMA_REGISTRY_PASSWORD: 'reg-secret',
    S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
    S3_SECRET_ACCESS_KEY: 's3-secret',
  });

  it.each(['KAFKA_SASL_PASSWORD', 'SCHEMA_REGISTRY_PASSWORD', 'S3_SECRET_ACCESS_KEY'])('replaces %s with <redacted>', (name) => {
    expect(redactedConfig(withSecrets)[name]).toBe('<redacted>');
  });

  it('never contains a secret value anywhere', () => {
    const text = JSON.stringify(redactedConfig(withSecrets));
    for (const secret of ['kafka-secret', 'reg-secret', 's3-secret']) expect(text).not.toContain(secret);
  });

  it('keeps non-secret values, user names included', () => {
    const out = redactedConfig(withSecrets);
    expect(out.KAFKA_SASL_USERNAME).toBe('kafka-user');
    expect(out.S3_ACCESS_KEY_ID).toBe('AKIAEXAMPLE');
    expect(out.KAFKA_BROKERS).toEqual(['127.0.0.1:9092']);
  });

  it('leaves an unset secret undefined rather than pretending it is set', () => {
    expect(redactedConfig(loadConfig({})).KAFKA_SASL_PASSWORD).toBeUndefined();
  });

  it('lists every setting', () => {
    expect(Object.keys(redactedConfig(loadConfig({}))).sort()).toEqual(Object.keys(SETTINGS).sort());
  });
});

describe('withoutUserInfo', () => {
  it.each([
    ['https://user:pass@host', 'https://<redacted>@host'],
    ['https://user:p@ss@host', 'https://<redacted>@host'],
    ['https://u:a@b@c@host:8081/apis?x=1', 'https://<redacted>@host:8081/apis?x=1'],
    ['http://apikey@host/', 'http://<redacted>@host/'],
    ['HTTPS://U:P@HOST', 'HTTPS://<redacted>@HOST'],
    // An @ past the authority (in the path, query or fragment) is not userinfo.
    ['https://host/path@v2', 'https://host/path@v2'],
    ['https://host?who=a@b', 'https://host?who=a@b'],
    ['https://host#a@b', 'https://host#a@b'],
    ['https://u:p@host/path@v2', 'https://<redacted>@host/path@v2'],
    ['https://host', 'https://host'],
    ['tow-and-go/', 'tow-and-go/'],
    ['', ''],
  ])('%s → %s', (value, expected) => {
    expect(withoutUserInfo(value)).toBe(expected);
  });

  it('agrees with the URL parser on where the host starts', () => {
    for (const value of ['https://user:p@ss@host.example.com:8081/x', 'https://a@b:c@d@host.example.com/']) {
      const host = new URL(value).host;
      expect(withoutUserInfo(value)).toBe(`https://<redacted>@${host}${new URL(value).pathname}`);
    }
  });
});

describe('the configuration error line', () => {
  it.each([
    ['SCHEMA_REGISTRY_URL', 'https://user:s3cr3t@registry.example.com:notaport/apis', 'https://<redacted>@registry.example.com:notaport/apis'],
    ['SCHEMA_REGISTRY_URL', 'user:s3cr3t@registry.example.com', '<redacted>@registry.example.com'],
    ['S3_ENDPOINT', 'ftp://user:p@ss/word@host', 'ftp://<redacted>@host'],
    ['KAFKA_BROKERS', 'user:s3cr3t@broker:9092:x', '<redacted>@broker:9092:x'],
  ])('never prints the userinfo of a bad %s', (name, raw, shown) => {
    const error = configError({ [name]: raw });
    expect(error.message).toContain(`${name}=${JSON.stringify(shown)}: `);
    expect(error.message).not.toContain('s3cr3t');
    expect(error.message).not.toContain('p@ss');
  });

  it.each([
    ['no @', 'not a url', 'not a url'],
    ['an @ with no scheme', 'a@b@c', '<redacted>@c'],
    ['an @ right after the scheme', 'https://@host', 'https://<redacted>@host'],
  ])('redactUserInfo: %s', (_name, raw, shown) => {
    expect(redactUserInfo(raw)).toBe(shown);
  });
});
