/**
 * A registry behind TLS with a private CA and basic auth, on 127.0.0.1: the id lookup and the
 * library client both trust SCHEMA_REGISTRY_CA_FILE (and only it), send the credentials, and
 * never put them in an error.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AvroEncoder, createRegistry, loadSnapshotSchema, type RegistrySettings } from '../../src/codec.ts';
import { RegistryUnavailableError } from '../../src/errors.ts';
import { SchemaLookup } from '../../src/registry-client.ts';
import { rejectionOf } from '../support/thrown.ts';
import { makeTlsFixtures, type TlsFixtures } from '../support/tls-fixtures.ts';

const USER = 'registry-key';
const PASSWORD = 'registry-s3cret';
const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

let f: TlsFixtures;
let server: Server | undefined;
beforeAll(() => {
  f = makeTlsFixtures();
});
afterAll(() => f.remove());
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** A Confluent-style registry over TLS: one schema (id 1), registration of subject t-value answers id 1, everything behind basic auth. */
async function startRegistry(host = '127.0.0.1'): Promise<string> {
  server = createServer({ cert: f.read(f.serverCertFile), key: f.read(f.serverKeyFile) }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    res.setHeader('content-type', 'application/vnd.schemaregistry.v1+json');
    if (req.headers.authorization !== AUTH) {
      res.writeHead(401).end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }));
      return;
    }
    if (req.method === 'GET' && req.url === '/schemas/ids/1') res.end(JSON.stringify({ schema: '"long"' }));
    else if (req.method === 'POST' && req.url === '/subjects/t-value/versions') res.end(JSON.stringify({ id: 1 }));
    // The library sets the subject's compatibility first; the answer echoes it.
    else if (req.method === 'PUT' && req.url === '/config/t-value') res.end(Buffer.concat(chunks));
    else res.writeHead(404).end(JSON.stringify({ error_code: 40403, message: 'not found' }));
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, host);
  await once(server, 'listening');
  return `https://${host}:${(server.address() as { port: number }).port}`;
}

function settings(url: string, extra: Partial<RegistrySettings> = {}): RegistrySettings {
  return { url, username: USER, password: PASSWORD, timeoutMs: 2000, ca: f.read(f.caFile), ...extra };
}

async function lookupError(s: RegistrySettings): Promise<RegistryUnavailableError> {
  const error = await rejectionOf(new SchemaLookup(s).get(1));
  expect(error).toBeInstanceOf(RegistryUnavailableError);
  const e = error as RegistryUnavailableError;
  expect(`${e.message} ${String(e.cause)}`).not.toContain(PASSWORD);
  return e;
}

describe('SchemaLookup over TLS', () => {
  it('trusts the CA of SCHEMA_REGISTRY_CA_FILE and sends basic auth', async () => {
    const url = await startRegistry();
    expect(await new SchemaLookup(settings(url)).get(1)).toEqual({ schema: '"long"' });
    expect(await new SchemaLookup(settings(url.replace('127.0.0.1', 'localhost'))).get(1)).toEqual({ schema: '"long"' });
  });

  it('takes the credentials from the URL as well, never sending them in it', async () => {
    const url = await startRegistry();
    const withUserInfo = url.replace('https://', `https://${USER}:${PASSWORD}@`);
    expect(await new SchemaLookup(settings(withUserInfo, { username: undefined, password: undefined })).get(1)).toEqual({ schema: '"long"' });
  });

  it.each([
    ['without a CA file (the system store does not know the CA)', undefined],
    ['with another CA', 'other'],
  ])('stalls %s, naming SCHEMA_REGISTRY_CA_FILE', async (_what, which) => {
    const url = await startRegistry();
    const error = await lookupError(settings(url, { ca: which === undefined ? undefined : f.read(f.otherCaFile) }));
    expect(error.message).toMatch(
      /^schema registry lookup of id 1 got no answer: TLS: [A-Z_]+ \(the certificate is not trusted; see SCHEMA_REGISTRY_CA_FILE\)$/,
    );
  });

  it('checks the host name: a certificate for another name stalls', async () => {
    const url = await startRegistry('127.0.0.2');
    const error = await lookupError(settings(url));
    expect(error.message).toBe(
      'schema registry lookup of id 1 got no answer: TLS: ERR_TLS_CERT_ALTNAME_INVALID (the certificate does not name the host of SCHEMA_REGISTRY_URL)',
    );
  });

  it('stalls on a wrong password without printing it', async () => {
    const url = await startRegistry();
    const error = await lookupError(settings(url, { password: 'wrong-password' }));
    expect(error.message).toBe('schema registry lookup of id 1 failed: HTTP 401 (error_code 40101)');
    expect(error.message).not.toContain('wrong-password');
  });
});

describe('createRegistry (the library client, for publish) over TLS', () => {
  it('trusts the same CA file and sends basic auth', async () => {
    const url = await startRegistry();
    const encoder = new AvroEncoder(createRegistry(settings(url)), loadSnapshotSchema().raw, 't-value');
    expect(await encoder.schemaId()).toBe(1);
  });

  it('fails without the CA, and the error holds no credentials', async () => {
    const url = await startRegistry();
    const withUserInfo = url.replace('https://', `https://${USER}:${PASSWORD}@`);
    const encoder = new AvroEncoder(
      createRegistry(settings(withUserInfo, { ca: undefined, username: undefined, password: undefined })),
      loadSnapshotSchema().raw,
      't-value',
    );
    const error = await rejectionOf(encoder.schemaId());
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).not.toContain(PASSWORD);
  });
});
