/**
 * The Kafka client as every command builds it: brokers, TLS, SASL, retries, logging, the
 * compression codecs kafkajs lacks, and the one producer configuration. The consumer-group member
 * that feeds the pipeline is in consumer.ts.
 */
import { Kafka, type KafkaConfig, type KafkaMessage, logLevel, Partitioners, type Producer, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { registerCompressionCodecs } from '../compression.ts';
import type { Config } from '../config.ts';
import type { SourceRecord } from '../dlq.ts';

export type KafkaSettings = Pick<
  Config,
  'KAFKA_BROKERS' | 'KAFKA_CLIENT_ID' | 'KAFKA_SSL' | 'KAFKA_SASL_MECHANISM' | 'KAFKA_SASL_USERNAME' | 'KAFKA_SASL_PASSWORD'
>;

export function createKafka(c: KafkaSettings, log: Logger): Kafka {
  registerCompressionCodecs();
  const config: KafkaConfig = {
    clientId: c.KAFKA_CLIENT_ID,
    brokers: [...c.KAFKA_BROKERS],
    ssl: c.KAFKA_SSL,
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

function saslOptions(c: KafkaSettings): SASLOptions | undefined {
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
