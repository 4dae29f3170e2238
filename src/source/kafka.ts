/**
 * The Kafka client as every command builds it: brokers, TLS, SASL, retries, logging, the
 * compression codecs kafkajs lacks, and the one producer configuration. The consumer-group member
 * that feeds the pipeline is in consumer.ts.
 */
import type { ConnectionOptions } from 'node:tls';
import { Kafka, type KafkaConfig, type KafkaMessage, logLevel, Partitioners, type Producer, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { registerCompressionCodecs } from '../compression.ts';
import type { Config } from '../config.ts';
import type { SourceRecord } from '../dlq.ts';
import { type CredentialsProvider, mskIamProvider } from './msk-iam.ts';
import { clientCredentialsProvider } from './oauth.ts';

export type KafkaSettings = Pick<
  Config,
  | 'KAFKA_BROKERS'
  | 'KAFKA_CLIENT_ID'
  | 'KAFKA_SSL'
  | 'KAFKA_SSL_CA_FILE'
  | 'KAFKA_SSL_CERT_FILE'
  | 'KAFKA_SSL_KEY_FILE'
  | 'KAFKA_SSL_KEY_PASSWORD'
  | 'KAFKA_SSL_SERVERNAME'
  | 'KAFKA_SASL_MECHANISM'
  | 'KAFKA_SASL_USERNAME'
  | 'KAFKA_SASL_PASSWORD'
  | 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL'
  | 'KAFKA_SASL_OAUTHBEARER_CLIENT_ID'
  | 'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET'
  | 'KAFKA_SASL_OAUTHBEARER_SCOPE'
  | 'KAFKA_SASL_AWS_REGION'
>;

/** Bound on one token request to the OAuth endpoint (kafkajs waits for the provider while it authenticates). */
const TOKEN_TIMEOUT_MS = 10_000;

export function createKafka(c: KafkaSettings, log: Logger): Kafka {
  registerCompressionCodecs();
  const config: KafkaConfig = {
    clientId: c.KAFKA_CLIENT_ID,
    brokers: [...c.KAFKA_BROKERS],
    ssl: tlsOptions(c),
    connectionTimeout: 5000,
    requestTimeout: 30000,
    // kafkajs retries broker calls itself; past these, its errors reach our handlers.
    retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 10000 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...extra } = entry.log;
      const level = entry.level === logLevel.ERROR ? 'error' : entry.level === logLevel.WARN ? 'warn' : 'debug';
      log[level]({ kafkajs: entry.namespace, ...extra }, message);
    },
  };
  const sasl = saslOptions(c);
  if (sasl !== undefined) config.sasl = sasl;
  return new Kafka(config);
}

/**
 * TLS as kafkajs hands it to tls.connect. Certificates and host names are always verified
 * (rejectUnauthorized is never false): against KAFKA_SSL_CA_FILE, or the system store without it,
 * and against KAFKA_SSL_SERVERNAME instead of the broker's host when it is set. KAFKA_SSL alone
 * gives `{ rejectUnauthorized: true }`, which is what `ssl: true` meant before: the system store.
 */
export function tlsOptions(c: KafkaSettings): ConnectionOptions | false {
  if (!c.KAFKA_SSL) return false;
  return {
    rejectUnauthorized: true,
    ...(c.KAFKA_SSL_CA_FILE === undefined ? {} : { ca: c.KAFKA_SSL_CA_FILE.contents }),
    ...(c.KAFKA_SSL_CERT_FILE === undefined ? {} : { cert: c.KAFKA_SSL_CERT_FILE.contents }),
    ...(c.KAFKA_SSL_KEY_FILE === undefined ? {} : { key: c.KAFKA_SSL_KEY_FILE.contents }),
    ...(c.KAFKA_SSL_KEY_PASSWORD === undefined ? {} : { passphrase: c.KAFKA_SSL_KEY_PASSWORD }),
    ...(c.KAFKA_SSL_SERVERNAME === undefined ? {} : { servername: c.KAFKA_SSL_SERVERNAME }),
  };
}

/**
 * SASL per mechanism; oauthbearer and aws-msk-iam both feed kafkajs' OAUTHBEARER with a refreshing
 * token. `awsCredentials` replaces the default AWS chain (tests).
 */
export function saslOptions(c: KafkaSettings, awsCredentials?: CredentialsProvider): SASLOptions | undefined {
  const username = c.KAFKA_SASL_USERNAME ?? '';
  const password = c.KAFKA_SASL_PASSWORD ?? '';
  switch (c.KAFKA_SASL_MECHANISM) {
    case 'none':
      return undefined;
    case 'plain':
      return { mechanism: 'plain', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
    case 'oauthbearer':
      return {
        mechanism: 'oauthbearer',
        oauthBearerProvider: clientCredentialsProvider({
          tokenUrl: c.KAFKA_SASL_OAUTHBEARER_TOKEN_URL ?? '',
          clientId: c.KAFKA_SASL_OAUTHBEARER_CLIENT_ID ?? '',
          clientSecret: c.KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET ?? '',
          scope: c.KAFKA_SASL_OAUTHBEARER_SCOPE,
          timeoutMs: TOKEN_TIMEOUT_MS,
        }),
      };
    case 'aws-msk-iam':
      return {
        mechanism: 'oauthbearer',
        oauthBearerProvider: mskIamProvider({
          region: c.KAFKA_SASL_AWS_REGION ?? '',
          ...(awsCredentials === undefined ? {} : { credentials: awsCredentials }),
        }),
      };
  }
}

/**
 * The one producer configuration (DLQ, publisher, replay). Not idempotent: kafkajs' idempotent
 * producer wants unbounded retries, which would hang a send through a broker outage instead of
 * handing the failure to the pipeline's own backoff. A retry can then duplicate a record, which
 * both consumers of these topics tolerate: an identical snapshot is a no-op, and the DLQ is
 * documented as at-least-once. One request in flight keeps the order; acks are per send (-1).
 */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
}

export function toSourceRecord(topic: string, partition: number, m: KafkaMessage): SourceRecord {
  return { topic, partition, offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, headers: m.headers };
}
