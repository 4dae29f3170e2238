/**
 * The local broker's secured listeners, proven with Kafka's own Java tools only (Debian's
 * librdkafka 2.0.2 cannot log in with SCRAM to Kafka 4): SASL_SSL with SCRAM-SHA-512,
 * SCRAM-SHA-256, PLAIN and OAUTHBEARER, mTLS, and the failures a client must see: a wrong
 * password, a missing READ ACL, a missing CREATE ACL, an unknown CA on either side.
 *
 * Ports and the stack directory come from the same variables as stack.sh (STACK_HOME,
 * STACK_KAFKA_PORT, STACK_KAFKA_SASL_SSL_PORT, STACK_KAFKA_MTLS_PORT); the defaults are the
 * shared stack's. The Java tools start slowly, so the cases run side by side.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENT_CERT_PEM,
  CLIENT_KEY_PEM,
  consumeWithJavaSecure,
  errorLines,
  HOST,
  type JavaRun,
  listTopicsWithJavaSecure,
  MTLS_PORT,
  NO_READ_USER,
  OTHER_CLIENT_CERT_PEM,
  OTHER_CLIENT_KEY_PEM,
  OTHER_TRUSTSTORE_P12,
  PLAINTEXT_BOOTSTRAP,
  PROPERTIES,
  produceWithJavaSecure,
  propertyOf,
  removeScratch,
  runKafkaTool,
  SASL_SSL_PORT,
  scratchFile,
  secureTopicName,
  USER,
  withProperties,
} from '../support/secure-stack.ts';
import { createTopicsReady } from '../support/stack.ts';

const kafka = new Kafka({ clientId: 'secure-stack-test', brokers: [PLAINTEXT_BOOTSTRAP], logLevel: logLevel.NOTHING, retry: { retries: 5 } });

const WAYS_IN = [
  ['SCRAM-SHA-512 over SASL_SSL', 'scram512', PROPERTIES.scramSha512],
  ['SCRAM-SHA-256 over SASL_SSL', 'scram256', PROPERTIES.scramSha256],
  ['PLAIN over SASL_SSL', 'plain', PROPERTIES.plain],
  ['OAUTHBEARER (unsecured JWT) over SASL_SSL', 'oauth', PROPERTIES.oauthbearer],
  ['mTLS (client certificate) over SSL', 'mtls', PROPERTIES.mtls],
] as const;

const topics: Record<string, string> = Object.fromEntries([...WAYS_IN.map(([, label]) => label), 'no-read'].map((label) => [label, secureTopicName(label)]));
const FROM_PLAINTEXT = 'written-over-plaintext-as-anonymous';
/** A TCP connection to the port succeeds. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: HOST, port, timeout: 3000 }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
/** Kafka's tools print their own error line on stdout and log to stderr: look at both. */
const output = (run: JavaRun) => `${run.stdout}\n${run.stderr}`;

describe('secured listeners of the local broker, with Kafka Java tools', () => {
  beforeAll(async () => {
    // A broker started by an older stack.sh has neither the files nor the listeners: say so at once.
    const setUp = 'the secured listeners are not set up (bash stack/stack.sh restart kafka)';
    for (const file of Object.values(PROPERTIES)) if (!existsSync(file)) throw new Error(`${file} is missing: ${setUp}`);
    for (const port of [SASL_SSL_PORT, MTLS_PORT]) if (!(await listening(port))) throw new Error(`nothing listens on ${HOST}:${port}: ${setUp}`);
    // PLAINTEXT is User:ANONYMOUS, a super user under the authorizer: it may create topics and
    // produce, as the registry, the demo and every other test do.
    const admin = kafka.admin();
    await admin.connect();
    try {
      await createTopicsReady(
        admin,
        Object.values(topics).map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
      );
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (const topic of Object.values(topics)) await producer.send({ topic, acks: -1, messages: [{ value: FROM_PLAINTEXT }] });
    } finally {
      await producer.disconnect();
    }
  });

  afterAll(async () => {
    removeScratch();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.disconnect();
  });

  it.concurrent.each(WAYS_IN)('%s: the service user produces and consumes', async (_, label, properties) => {
    const topic = topics[label] ?? '';
    const lines = [`${label}-1`, `${label}-2`];
    await produceWithJavaSecure(topic, lines, properties);
    const consumed = await consumeWithJavaSecure(topic, 3, properties, `${topic}-group`);
    expect(consumed.records, errorLines(consumed)).toEqual([FROM_PLAINTEXT, ...lines]);
  });

  it.concurrent('a wrong SCRAM password fails the login with an authentication error', async () => {
    const jaas = propertyOf(PROPERTIES.scramSha512, 'sasl.jaas.config') ?? '';
    expect(jaas).toContain(`password="${USER.password}"`);
    const wrong = withProperties(PROPERTIES.scramSha512, { 'sasl.jaas.config': jaas.replace(USER.password, 'not-the-password') });
    const run = await listTopicsWithJavaSecure(wrong);
    expect(run.status).not.toBe(0);
    expect(output(run)).toMatch(
      /SaslAuthenticationException: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512/,
    );
  });

  it.concurrent('no-read logs in and sees the topic, but may not read it: an authorization error', async () => {
    const topic = topics['no-read'] ?? '';
    const [listed, consumed] = await Promise.all([
      listTopicsWithJavaSecure(PROPERTIES.noRead),
      consumeWithJavaSecure(topic, 1, PROPERTIES.noRead, `${topic}-group`),
    ]);
    expect(propertyOf(PROPERTIES.noRead, 'sasl.jaas.config')).toContain(`username="${NO_READ_USER.username}"`);
    expect(listed.status, errorLines(listed)).toBe(0);
    expect(listed.stdout.split('\n')).toContain(topic);
    expect(consumed.records).toEqual([]);
    expect(output(consumed)).toMatch(/TopicAuthorizationException: Not authorized to access topics: \[/);
  });

  it.concurrent('the service user may not create topics', async () => {
    const topic = secureTopicName('create');
    const run = await runKafkaTool('org.apache.kafka.tools.TopicCommand', [
      '--bootstrap-server',
      propertyOf(PROPERTIES.scramSha512, 'bootstrap.servers') ?? '',
      '--command-config',
      PROPERTIES.scramSha512,
      '--create',
      '--topic',
      topic,
      '--partitions',
      '1',
    ]);
    expect(run.status).not.toBe(0);
    expect(output(run)).toMatch(/TopicAuthorizationException: Authorization failed/);
  });

  it.concurrent('a client that trusts only an unrelated CA fails the TLS handshake', async () => {
    const run = await listTopicsWithJavaSecure(withProperties(PROPERTIES.scramSha512, { 'ssl.truststore.location': OTHER_TRUSTSTORE_P12 }));
    expect(run.status).not.toBe(0);
    expect(output(run)).toMatch(/SslAuthenticationException: SSL handshake failed/);
    expect(output(run)).toMatch(/PKIX path building failed/);
  });

  it.concurrent('the mTLS listener refuses a client certificate from an unrelated CA', async () => {
    // The same client configuration with a PEM keystore (unencrypted key, then certificate),
    // once with client.pem (the control: it logs in) and once with other-client.pem.
    const pemKeystore = (key: string, cert: string) => {
      const keystore = scratchFile('keystore.pem');
      writeFileSync(keystore, `${readFileSync(key, 'utf8')}${readFileSync(cert, 'utf8')}`);
      return withProperties(PROPERTIES.mtls, {
        'ssl.keystore.type': 'PEM',
        'ssl.keystore.location': keystore,
        'ssl.keystore.password': null,
        'ssl.key.password': null,
      });
    };
    const [ours, other] = await Promise.all([
      listTopicsWithJavaSecure(pemKeystore(CLIENT_KEY_PEM, CLIENT_CERT_PEM)),
      listTopicsWithJavaSecure(pemKeystore(OTHER_CLIENT_KEY_PEM, OTHER_CLIENT_CERT_PEM)),
    ]);
    expect(ours.status, errorLines(ours)).toBe(0);
    expect(other.status).not.toBe(0);
    expect(output(other)).toMatch(/SslAuthenticationException/);
    expect(output(other)).toMatch(/bad_certificate|certificate_unknown/);
  });
});
