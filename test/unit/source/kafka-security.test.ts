/**
 * The TLS and SASL options createKafka hands kafkajs, built from real settings. TLS is proven
 * against a real TLS server with throw-away certificates, connecting the way kafkajs' socket
 * factory does; SASL by what each mechanism gives kafkajs.
 */
import { once } from 'node:events';
import { isIP } from 'node:net';
import { type ConnectionOptions, connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { saslOptions, tlsOptions } from '../../../src/source/kafka.ts';
import { makeTlsFixtures, type TlsFixtures } from '../../support/tls-fixtures.ts';
import { startTokenEndpoint } from '../../support/token-endpoint.ts';

let f: TlsFixtures;
let server: Server | undefined;
beforeAll(() => {
  f = makeTlsFixtures();
});
afterAll(() => f.remove());
afterEach(async () => {
  server?.close();
  server = undefined;
});

/** A TLS "broker" that answers "ok" and reports the client certificate's CN; `mtls` requires one. */
async function startBroker(mtls: boolean): Promise<number> {
  server = createServer(
    { cert: f.read(f.serverCertFile), key: f.read(f.serverKeyFile), ca: f.read(f.caFile), requestCert: mtls, rejectUnauthorized: mtls },
    (socket) => socket.end(`ok ${String((socket.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN ?? '-')}`),
  );
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** As kafkajs' socketFactory connects: SNI from the host unless it is an IP, then its `ssl` options on top. */
async function handshake(host: string, port: number, ssl: ConnectionOptions): Promise<string> {
  const socket: TLSSocket = connect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl });
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  }).finally(() => socket.destroy());
  return Buffer.concat(chunks).toString();
}

function sslFor(env: Record<string, string>): ConnectionOptions {
  const ssl = tlsOptions(loadConfig({ KAFKA_SSL: 'true', ...env }));
  if (ssl === false) throw new Error('expected TLS options');
  expect(ssl.rejectUnauthorized).toBe(true);
  return ssl;
}

function reasonOf(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error);
}

describe('tlsOptions', () => {
  it('is off without KAFKA_SSL, and verifies against the system store with KAFKA_SSL alone', () => {
    expect(tlsOptions(loadConfig({}))).toBe(false);
    expect(tlsOptions(loadConfig({ KAFKA_SSL: 'true' }))).toEqual({ rejectUnauthorized: true });
  });

  it('trusts the CA of KAFKA_SSL_CA_FILE and checks the broker’s name', async () => {
    const port = await startBroker(false);
    expect(await handshake('127.0.0.1', port, sslFor({ KAFKA_SSL_CA_FILE: f.caFile }))).toBe('ok -');
    expect(await handshake('localhost', port, sslFor({ KAFKA_SSL_CA_FILE: f.caFile }))).toBe('ok -');
  });

  it('refuses a broker signed by a CA it was not given (system store, or another CA)', async () => {
    const port = await startBroker(false);
    for (const ssl of [sslFor({}), sslFor({ KAFKA_SSL_CA_FILE: f.otherCaFile })]) {
      const error = await handshake('localhost', port, ssl).catch((e: unknown) => e);
      expect(reasonOf(error)).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
    }
  });

  it('checks KAFKA_SSL_SERVERNAME instead of the host when set: a name the certificate lacks fails', async () => {
    const port = await startBroker(false);
    expect(await handshake('127.0.0.1', port, sslFor({ KAFKA_SSL_CA_FILE: f.caFile, KAFKA_SSL_SERVERNAME: 'localhost' }))).toBe('ok -');
    const error = await handshake('127.0.0.1', port, sslFor({ KAFKA_SSL_CA_FILE: f.caFile, KAFKA_SSL_SERVERNAME: 'kafka.example.com' })).catch(
      (e: unknown) => e,
    );
    expect(reasonOf(error)).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('presents the client certificate (mTLS), its key decrypted with KAFKA_SSL_KEY_PASSWORD', async () => {
    const port = await startBroker(true);
    const ssl = sslFor({
      KAFKA_SSL_CA_FILE: f.caFile,
      KAFKA_SSL_CERT_FILE: f.clientCertFile,
      KAFKA_SSL_KEY_FILE: f.clientKeyFile,
      KAFKA_SSL_KEY_PASSWORD: f.clientKeyPassphrase,
    });
    expect(await handshake('localhost', port, ssl)).toBe('ok tow-and-go-sink');
    expect(
      await handshake(
        'localhost',
        port,
        sslFor({ KAFKA_SSL_CA_FILE: f.caFile, KAFKA_SSL_CERT_FILE: f.clientCertFile, KAFKA_SSL_KEY_FILE: f.clientPlainKeyFile }),
      ),
    ).toBe('ok tow-and-go-sink');
  });

  it('gets no session from a broker that requires a client certificate when none is set', async () => {
    const port = await startBroker(true);
    const error = await handshake('localhost', port, sslFor({ KAFKA_SSL_CA_FILE: f.caFile })).catch((e: unknown) => e);
    expect(reasonOf(error)).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
  });
});

describe('saslOptions', () => {
  it.each(['plain', 'scram-sha-256', 'scram-sha-512'] as const)('%s: user name and password, as before', (mechanism) => {
    const c = loadConfig({ KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' });
    expect(saslOptions(c)).toEqual({ mechanism, username: 'u', password: 'p' });
  });

  it('none: no SASL', () => {
    expect(saslOptions(loadConfig({}))).toBeUndefined();
  });

  it('oauthbearer: kafkajs OAUTHBEARER with tokens from KAFKA_SASL_OAUTHBEARER_TOKEN_URL', async () => {
    const endpoint = await startTokenEndpoint('sink-client', 'sink-secret');
    try {
      const c = loadConfig({
        KAFKA_SASL_MECHANISM: 'oauthbearer',
        KAFKA_SASL_OAUTHBEARER_TOKEN_URL: endpoint.url,
        KAFKA_SASL_OAUTHBEARER_CLIENT_ID: 'sink-client',
        KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: 'sink-secret',
        KAFKA_SASL_OAUTHBEARER_SCOPE: 'kafka',
      });
      const sasl = saslOptions(c);
      if (sasl?.mechanism !== 'oauthbearer') throw new Error('expected oauthbearer');
      expect(await sasl.oauthBearerProvider()).toEqual({ value: endpoint.issued[0] });
      expect(endpoint.requests[0]?.form.get('scope')).toBe('kafka');
    } finally {
      await endpoint.close();
    }
  });
});
