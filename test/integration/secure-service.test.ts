/**
 * The service itself over the stack's secured listeners (issue 10, item 4): the real `tow-and-go
 * consume` and `tow-and-go publish` processes, end to end, over SCRAM-SHA-512 + TLS, mutual TLS,
 * OAUTHBEARER with the client-credentials token provider, and SCRAM-SHA-256 with the registry
 * behind an https front with basic auth. Each run is checked with the ledger (every snapshot in S3
 * with the right bytes, offsets committed to the end, the DLQ as expected), and no secret may
 * appear in anything the processes printed, in /metrics or in a DLQ header.
 *
 * Topics are made over PLAINTEXT (the service user may not create topics); their names start with
 * `it-`, which the ACLs of the secured listeners allow. The refusals are in secure-refusals.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { createKafka, createProducer } from '../../src/source/kafka.ts';
import { assertLedger } from '../support/ledger.ts';
import {
  consume,
  expectNoSecret,
  mtlsEnv,
  oauthEnv,
  pemBodyLines,
  publishCli,
  type RegistryFront,
  S3_KEYS,
  type SecureFixtures,
  saslEnv,
  spawned,
  startSecureFixtures,
} from '../support/secure-service.ts';
import { CLIENT_KEY_PEM, OAUTH_SUBJECT, USER } from '../support/secure-stack.ts';
import { baseTime, createTopics, readTopic, silent, snapshots, type TestEnv, testEnv } from '../support/stack.ts';
import type { TlsFixtures } from '../support/tls-fixtures.ts';
import type { TokenEndpoint } from '../support/token-endpoint.ts';
import { wire } from '../support/wire.ts';

const OAUTH_SECRET = `oauth-secret-${randomBytes(8).toString('hex')}`;
const REGISTRY_USER = 'tow-and-go-registry';
const REGISTRY_PASSWORD = `registry-pw-${randomBytes(8).toString('hex')}`;

let secure: SecureFixtures;
let tokens: TokenEndpoint;
let fixtures: TlsFixtures;
let front: RegistryFront;
/** What else the runs expose: /metrics at the end of each run, and the DLQ headers. */
const exposed = new Map<string, string>();

beforeAll(async () => {
  secure = await startSecureFixtures(OAUTH_SECRET, REGISTRY_USER, REGISTRY_PASSWORD);
  ({ tokens, fixtures, front } = secure);
});

afterAll(async () => {
  await secure.close();
});

/**
 * Starts `consume`, publishes 5 snapshots with `publish` (both with `env`), lets `more` add records,
 * then checks the ledger and stops the consumer with SIGTERM (exit 0).
 */
async function endToEnd(t: TestEnv, env: Record<string, string>, deadLettered: ReadonlyMap<string, string> = new Map(), more?: () => Promise<void>) {
  const consumer = consume(t, env);
  const port = await consumer.httpPort();
  const published = snapshots(5, baseTime());
  await publishCli(t, env, published);
  await more?.();
  const ledger = await assertLedger(t, published, deadLettered);
  expect(ledger.deadLettered).toBe(deadLettered.size);
  exposed.set(`/metrics of ${t.topic}`, await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  consumer.child.kill('SIGTERM');
  expect((await consumer.exited).code, consumer.stdout()).toBe(0);
  expect(consumer.stderr()).toBe('');
  return ledger;
}

describe.concurrent('the service over the secured listeners', () => {
  it('SCRAM-SHA-512 over TLS (9094, the stack CA in KAFKA_SSL_CA_FILE): consume and publish end to end', async () => {
    const t = testEnv('sec-scram');
    await createTopics(t, 2);
    const ledger = await endToEnd(t, saslEnv('scram-sha-512'));
    expect(ledger).toMatchObject({ landed: 5, deadLettered: 0, lost: 0 });
  });

  it('mutual TLS (9095, client.pem as tow-and-go-mtls): consume and publish end to end', async () => {
    const t = testEnv('sec-mtls');
    await createTopics(t, 2);
    const ledger = await endToEnd(t, mtlsEnv());
    expect(ledger).toMatchObject({ landed: 5, deadLettered: 0, lost: 0 });
  });

  it('OAUTHBEARER with tokens from the client-credentials endpoint: consume and publish end to end', async () => {
    const t = testEnv('sec-oauth');
    await createTopics(t, 2);
    const asked = tokens.requests.length;
    const ledger = await endToEnd(t, oauthEnv(tokens.url, OAUTH_SUBJECT, OAUTH_SECRET));
    expect(ledger).toMatchObject({ landed: 5, deadLettered: 0, lost: 0 });
    // The start-up check, the consumer and DLQ producer, and publish (check and producer) each got a token.
    expect(tokens.requests.length - asked).toBeGreaterThanOrEqual(3);
    expect(tokens.requests.slice(asked).every((r) => r.form.get('grant_type') === 'client_credentials')).toBe(true);
  });

  it('SCRAM-SHA-256 with the registry behind https + basic auth (SCHEMA_REGISTRY_CA_FILE): end to end, and two records dead-lettered', async () => {
    const t = testEnv('sec-registry');
    // One partition, so the DLQ entries are told apart by offset alone.
    await createTopics(t, 1);
    const env = {
      ...saslEnv('scram-sha-256'),
      SCHEMA_REGISTRY_URL: front.url,
      SCHEMA_REGISTRY_CA_FILE: fixtures.caFile,
      SCHEMA_REGISTRY_USERNAME: REGISTRY_USER,
      SCHEMA_REGISTRY_PASSWORD: REGISTRY_PASSWORD,
    };
    const before = front.passed();
    // Offsets 0-4 are the snapshots; 5 is not Avro at all, 6 names a schema id the registry lacks (looked up through the front).
    const deadLettered = new Map([
      ['5', 'WIRE_FORMAT_INVALID'],
      ['6', 'SCHEMA_UNKNOWN'],
    ]);
    await endToEnd(t, env, deadLettered, async () => {
      // Produced over the secured listener too, with the service's own client.
      const producer = createProducer(createKafka(loadConfig({ ...t.env, ...env }), silent));
      await producer.connect();
      await producer.send({
        topic: t.topic,
        acks: -1,
        messages: [
          { key: 'poison-not-avro', value: Buffer.from('this is not Avro') },
          { key: 'poison-unknown-id', value: wire(987_654_321, Buffer.from([0])) },
        ],
      });
      await producer.disconnect();
    });
    expect(front.passed()).toBeGreaterThan(before);
    expect(front.refused()).toBe(0);
    for (const record of await readTopic(t.dlqTopic)) {
      exposed.set(`DLQ headers of ${t.dlqTopic}@${record.offset}`, JSON.stringify(record.headers));
    }
  });
});

describe('secrets', () => {
  it('appear in no line printed by any of these runs, in no /metrics text and in no DLQ header', () => {
    const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');
    const secrets = [
      USER.password,
      OAUTH_SECRET,
      basic(OAUTH_SUBJECT, OAUTH_SECRET),
      // Each token, and its claims part alone.
      ...tokens.issued.flatMap((token) => [token, token.split('.')[1] ?? token]),
      REGISTRY_PASSWORD,
      basic(REGISTRY_USER, REGISTRY_PASSWORD),
      S3_KEYS.S3_SECRET_ACCESS_KEY,
      ...pemBodyLines(CLIENT_KEY_PEM),
    ];
    expect(tokens.issued.length).toBeGreaterThan(0);
    const texts = new Map(exposed);
    spawned.forEach((p, i) => {
      texts.set(`stdout of run ${i} (${p.child.spawnargs.slice(2).join(' ')})`, p.stdout());
      texts.set(`stderr of run ${i}`, p.stderr());
    });
    // consume and publish ran in each of the 4 runs; the DLQ had 2 entries.
    expect(spawned.length).toBe(8);
    expect([...texts.keys()].filter((k) => k.startsWith('DLQ headers'))).toHaveLength(2);
    // The lines where each secret setting would show are there, redacted.
    const printed = [...texts.values()].join('\n');
    for (const name of ['KAFKA_SASL_PASSWORD', 'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET', 'SCHEMA_REGISTRY_PASSWORD', 'S3_SECRET_ACCESS_KEY']) {
      expect(printed).toContain(`"${name}":"<redacted>"`);
    }
    expectNoSecret(texts, secrets);
  });
});
