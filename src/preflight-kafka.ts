/** The Kafka start-up check (preflight.ts): login, topic and DLQ metadata, and the group. */
import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { causeChain, describeError } from './errors.ts';
import { CHECK_TIMEOUT_MS, type Check, down, type Outcome, ok, refusal } from './preflight-outcome.ts';
import { type KafkaResource, type KafkaScope, kafkaRefusal } from './refusals.ts';
import { type KafkaSettings, saslOptions, tlsOptions } from './source/kafka.ts';

export interface KafkaCheckScope {
  /** The topic the command reads (or, for publish, writes). */
  readonly topic: KafkaResource;
  readonly dlqTopic?: KafkaResource | undefined;
  readonly group?: KafkaResource | undefined;
}

/**
 * Authentication (an admin connects), topic authorization (metadata of the topic and the DLQ topic:
 * TOPIC_AUTHORIZATION_FAILED without DESCRIBE) and group authorization (describeGroups:
 * GROUP_AUTHORIZATION_FAILED without DESCRIBE). No admin call shows a missing READ on the topic:
 * metadata, ListOffsets and OffsetFetch all need DESCRIBE only (the stack's `no-read` user passes
 * them all). The consumer's first fetch does show it, within a second of joining, and the consumer
 * treats it as a refusal (source/consumer.ts, main.ts): same line, same exit code.
 *
 * Its own short-retry client: kafkajs retries TLS failures as connection errors for ~40 s.
 */
export function kafkaCheck(c: KafkaSettings, scope: KafkaCheckScope, timeoutMs = CHECK_TIMEOUT_MS): Check {
  return { dependency: 'kafka', run: () => checkKafka(c, scope, timeoutMs) };
}

async function checkKafka(c: KafkaSettings, scope: KafkaCheckScope, timeoutMs: number): Promise<Outcome> {
  // kafkajs logs, at debug, the errors it swallows (FindCoordinator's GROUP_AUTHORIZATION_FAILED).
  const logged: unknown[] = [];
  const config: KafkaConfig = {
    clientId: c.KAFKA_CLIENT_ID,
    brokers: [...c.KAFKA_BROKERS],
    ssl: tlsOptions(c),
    connectionTimeout: Math.min(5000, timeoutMs),
    authenticationTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry: { retries: 1, initialRetryTime: 250, maxRetryTime: 1000 },
    logLevel: logLevel.DEBUG,
    logCreator: () => (entry) => {
      if (entry.log.error instanceof Error) logged.push(entry.log.error);
    },
  };
  const sasl = saslOptions(c);
  if (sasl !== undefined) config.sasl = sasl;
  const admin = new Kafka(config).admin();
  const mechanism = c.KAFKA_SASL_MECHANISM;
  let step: KafkaScope = { mechanism };
  try {
    await admin.connect();
    for (const topic of [scope.topic, scope.dlqTopic]) {
      if (topic === undefined) continue;
      step = { mechanism, topic };
      await admin.fetchTopicMetadata({ topics: [topic.name] });
    }
    if (scope.group !== undefined) {
      step = { mechanism, group: scope.group };
      logged.length = 0;
      await admin.describeGroups([scope.group.name]);
    }
    return ok;
  } catch (error) {
    return kafkaOutcome(error, step, logged);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * A failed Kafka step: refused, or down. `logged` are the errors kafkajs logged during the step;
 * they are read only when kafkajs threw KafkaJSGroupCoordinatorNotFound, which replaces the
 * broker's own answer to FindCoordinator (brokerPool.withBroker drops it).
 */
export function kafkaOutcome(error: unknown, step: KafkaScope, logged: readonly unknown[] = []): Outcome {
  const direct = kafkaRefusal(error, step);
  if (direct !== undefined) return refusal(direct);
  if (causeChain(error).some((e) => e instanceof Error && e.name === 'KafkaJSGroupCoordinatorNotFound')) {
    for (const e of logged) {
      const swallowed = kafkaRefusal(e, step);
      if (swallowed !== undefined) return refusal(swallowed);
    }
  }
  const missing = causeChain(error).some((e) => typeof e === 'object' && e !== null && 'type' in e && e.type === 'UNKNOWN_TOPIC_OR_PARTITION');
  if (missing && step.topic !== undefined) return down(`topic ${step.topic.name} (${step.topic.setting}) does not exist yet`);
  return down(kafkaReason(error));
}

/** The deepest message of kafkajs' wrapping, with Node's code when it has one. */
function kafkaReason(error: unknown): string {
  const chain = causeChain(error);
  const last = chain[chain.length - 1];
  const code = typeof last === 'object' && last !== null && 'code' in last && typeof last.code === 'string' ? ` (${last.code})` : '';
  return `${describeError(last)}${code}`;
}
