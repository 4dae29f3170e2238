import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, DecodeError, RegistryUnavailableError } from '../../src/errors.ts';
import { type LookupVerdict, lookupVerdict, RecentlyUnknownIds, registryEndpoint, SchemaLookup } from '../../src/registry-client.ts';
import { type FakeAnswer, type FakeRegistry, fakeRegistry } from '../support/fake-registry.ts';
import { thrownBy } from '../support/thrown.ts';

/** A port nothing listens on (fetch refuses some low ports such as 1 before connecting). */
async function closedPortUrl(): Promise<string> {
  const r = await fakeRegistry(() => ({ status: 200 }));
  await r.close();
  return r.url;
}

const AVRO = { schema: '"long"' };
const NOT_FOUND = { error_code: 40403, message: 'Schema 7 not found.' };

describe('lookupVerdict: only 200 with a schema and 404/40403 are about the record', () => {
  it.each<[number, unknown, LookupVerdict]>([
    [200, AVRO, 'found'],
    [200, { schema: '"long"', schemaType: 'PROTOBUF' }, 'found'],
    [404, NOT_FOUND, 'unknown'],
    [200, undefined, 'stall'],
    [200, { id: 7 }, 'stall'],
    [404, undefined, 'stall'],
    [404, { error_code: 40401, message: 'Subject not found.' }, 'stall'],
    [404, { error_code: '40403' }, 'stall'],
    [400, undefined, 'stall'],
    [401, { error_code: 401 }, 'stall'],
    [403, undefined, 'stall'],
    [408, undefined, 'stall'],
    [422, { error_code: 42201 }, 'stall'],
    [429, undefined, 'stall'],
    [500, { error_code: 50001 }, 'stall'],
    [502, undefined, 'stall'],
    [503, undefined, 'stall'],
  ])('HTTP %i with %j → %s', (status, body, verdict) => {
    expect(lookupVerdict(status, body)).toBe(verdict);
  });
});

describe('registryEndpoint: credentials in the URL become basic auth, in one place', () => {
  it.each<[string, string | undefined, string | undefined, string, { username: string; password: string } | undefined]>([
    ['http://127.0.0.1:8081/apis/ccompat/v7', undefined, undefined, 'http://127.0.0.1:8081/apis/ccompat/v7', undefined],
    ['http://127.0.0.1:8081/apis/ccompat/v7/', undefined, undefined, 'http://127.0.0.1:8081/apis/ccompat/v7', undefined],
    ['https://key:secret@registry.example/api', undefined, undefined, 'https://registry.example/api', { username: 'key', password: 'secret' }],
    ['https://k%40y:p%3Ass%2Fw@registry.example', undefined, undefined, 'https://registry.example', { username: 'k@y', password: 'p:ss/w' }],
    ['https://registry.example', 'key', 'secret', 'https://registry.example', { username: 'key', password: 'secret' }],
    ['https://url-user:url-pass@registry.example', 'key', 'secret', 'https://registry.example', { username: 'key', password: 'secret' }],
  ])('%s with user %s', (url, username, password, bareUrl, auth) => {
    expect(registryEndpoint({ url, username, password, timeoutMs: 100 })).toEqual({ url: bareUrl, auth });
  });

  it('refuses an invalid URL without echoing it', () => {
    const error = thrownBy(ConfigError, () => registryEndpoint({ url: 'not a url user:hunter2', timeoutMs: 100 }));
    expect(error.message).not.toContain('hunter2');
  });
});

describe('RecentlyUnknownIds', () => {
  it('remembers an id until its TTL passes, then forgets it', () => {
    const ids = new RecentlyUnknownIds(1000, 10);
    ids.add(7, 0);
    expect(ids.has(7, 999)).toBe(true);
    expect(ids.has(7, 1000)).toBe(false);
    expect(ids.size).toBe(0);
  });

  it('holds at most `capacity` ids, dropping the oldest', () => {
    const ids = new RecentlyUnknownIds(60_000, 3);
    for (const id of [1, 2, 3, 4]) ids.add(id, 0);
    expect(ids.size).toBe(3);
    expect([1, 2, 3, 4].map((id) => ids.has(id, 1))).toEqual([false, true, true, true]);
  });

  it('moves a re-added id to the back of the line', () => {
    const ids = new RecentlyUnknownIds(60_000, 2);
    ids.add(1, 0);
    ids.add(2, 0);
    ids.add(1, 5);
    ids.add(3, 5);
    expect([1, 2, 3].map((id) => ids.has(id, 6))).toEqual([true, false, true]);
  });
});

describe('SchemaLookup against a fake registry', () => {
  let registry: FakeRegistry | undefined;
  afterEach(async () => {
    await registry?.close();
    registry = undefined;
  });

  async function lookupError(answer: FakeAnswer, timeoutMs = 2000): Promise<unknown> {
    registry = await fakeRegistry(() => answer);
    return new SchemaLookup({ url: registry.url, timeoutMs }).get(7).catch((e: unknown) => e);
  }

  it('asks GET /schemas/ids/{id} under the base path and returns the body', async () => {
    registry = await fakeRegistry(() => ({ status: 200, body: AVRO }));
    const found = await new SchemaLookup({ url: `${registry.url}/apis/ccompat/v7/`, timeoutMs: 2000 }).get(7);
    expect(found).toEqual(AVRO);
    expect(registry.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /apis/ccompat/v7/schemas/ids/7']);
    expect(registry.requests[0]?.headers.authorization).toBeUndefined();
  });

  it.each<[string, FakeAnswer]>([
    ['HTTP 500', { status: 500, body: { error_code: 50001 } }],
    ['HTTP 503', { status: 503 }],
    ['HTTP 429', { status: 429 }],
    ['HTTP 401', { status: 401, body: { error_code: 401, message: 'Unauthorized' } }],
    ['HTTP 403', { status: 403 }],
    ['HTTP 400', { status: 400 }],
    ['a 404 without error_code 40403 (not the registry API)', { status: 404, raw: '<html>not found</html>' }],
    ['a 200 without a schema', { status: 200, raw: '<html>login</html>' }],
    ['a reset connection', 'reset'],
  ])('stalls (RegistryUnavailableError) on %s', async (_what, answer) => {
    const error = await lookupError(answer);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as RegistryUnavailableError).retryable).toBe(true);
    expect((error as RegistryUnavailableError).message).toContain('id 7');
  });

  it('stalls on a registry that does not answer within the timeout', async () => {
    const error = await lookupError('hang', 150);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toBe('schema registry lookup of id 7 got no answer: timed out');
  });

  it('stalls on a refused connection, naming the reason', async () => {
    const error = await new SchemaLookup({ url: await closedPortUrl(), timeoutMs: 2000 }).get(7).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toBe('schema registry lookup of id 7 got no answer: ECONNREFUSED');
  });

  it('reports 404/40403 as SCHEMA_UNKNOWN and remembers it: the next lookup asks nobody', async () => {
    registry = await fakeRegistry(() => ({ status: 404, body: NOT_FOUND }));
    const lookup = new SchemaLookup({ url: registry.url, timeoutMs: 2000 });
    for (let i = 0; i < 3; i++) {
      const error = await lookup.get(7).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DecodeError);
      expect((error as DecodeError).code).toBe('SCHEMA_UNKNOWN');
      expect((error as DecodeError).retryable).toBe(false);
    }
    expect(registry.requests).toHaveLength(1);
  });

  it('does not remember an outage', async () => {
    let status = 503;
    registry = await fakeRegistry(() => (status === 200 ? { status, body: AVRO } : { status }));
    const lookup = new SchemaLookup({ url: registry.url, timeoutMs: 2000 });
    await expect(lookup.get(7)).rejects.toBeInstanceOf(RegistryUnavailableError);
    status = 200;
    await expect(lookup.get(7)).resolves.toEqual(AVRO);
  });

  describe('credentials', () => {
    const USER = 'api-key';
    const PASS = 's3cr:t@pw';
    const expected = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;

    it.each<[string, (url: string) => { url: string; username?: string; password?: string }]>([
      ['in the URL', (url) => ({ url: url.replace('http://', `http://${USER}:${encodeURIComponent(PASS)}@`) })],
      ['in the settings', (url) => ({ url, username: USER, password: PASS })],
    ])('sends basic auth for credentials %s, on found and on 40403 answers alike', async (_where, settings) => {
      let status = 200;
      registry = await fakeRegistry(() => (status === 200 ? { status, body: AVRO } : { status, body: NOT_FOUND }));
      const lookup = new SchemaLookup({ ...settings(registry.url), timeoutMs: 2000 });
      await lookup.get(1);
      status = 404;
      await expect(lookup.get(2)).rejects.toMatchObject({ code: 'SCHEMA_UNKNOWN' });
      expect(registry.requests.map((r) => r.headers.authorization)).toEqual([expected, expected]);
    });

    it.each<[string, FakeAnswer | 'refused']>([
      ['HTTP 401', { status: 401, body: { error_code: 401, message: 'Unauthorized' } }],
      ['HTTP 500', { status: 500 }],
      ['a timeout', 'hang'],
      ['a refused connection', 'refused'],
    ])('never puts them in an error message (%s)', async (_what, answer) => {
      registry = await fakeRegistry(() => (answer === 'refused' ? { status: 200 } : answer));
      const base = answer === 'refused' ? await closedPortUrl() : registry.url;
      const url = base.replace('http://', `http://${USER}:${encodeURIComponent(PASS)}@`);
      const error = await new SchemaLookup({ url, timeoutMs: 150 }).get(7).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RegistryUnavailableError);
      const text = `${(error as Error).message} ${String((error as Error).cause)}`;
      for (const secret of [USER, PASS, encodeURIComponent(PASS)]) expect(text).not.toContain(secret);
    });
  });
});
