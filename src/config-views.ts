/**
 * The configuration as each adapter and check wants it: pure mappings from Config, no I/O. The
 * composition root (main.ts) and the commands (cli.ts) build their adapters from these.
 */
import type { RegistrySettings } from './codec.ts';
import { type Config, LOCAL_S3_CREDENTIALS, LOCAL_S3_ENDPOINT } from './config.ts';
import type { KafkaCheckScope } from './preflight.ts';
import type { KafkaResource, KafkaScope } from './refusals.ts';
import type { S3SinkSettings } from './sink/s3.ts';
import type { Compression } from './snapshot.ts';

/** One S3 destination: where its objects go and how the client reaches it. */
export interface DestinationSettings {
  readonly name: string;
  readonly prefix: string;
  readonly compression: Compression;
  readonly s3: S3SinkSettings;
}

/** S3_DESTINATIONS, each entry completed from the single-bucket settings; or those settings alone, as `default`. */
export function destinationSettings(c: Config): DestinationSettings[] {
  const entries = c.S3_DESTINATIONS ?? [{ name: 'default', bucket: c.S3_BUCKET }];
  return entries.map((d) => {
    const base = s3Settings(c, d.endpoint ?? c.S3_ENDPOINT);
    return {
      name: d.name,
      prefix: d.prefix ?? c.S3_PREFIX,
      compression: d.compression ?? c.S3_COMPRESSION,
      s3: { ...base, bucket: d.bucket, region: d.region ?? c.S3_REGION },
    };
  });
}

/** The first destination: the pipeline builds its objects for it, and `get` and the change stream read it. */
export function primaryDestination(c: Config): DestinationSettings {
  const [first] = destinationSettings(c);
  // S3_DESTINATIONS is a non-empty list, or unset for the one default destination.
  if (first === undefined) throw new TypeError('no S3 destination');
  return first;
}

/** The single-bucket settings (S3_BUCKET, S3_ENDPOINT, …); `endpointSetting` overrides S3_ENDPOINT. */
export function s3Settings(c: Config, endpointSetting = c.S3_ENDPOINT): S3SinkSettings {
  const endpoint = endpointSetting === '' ? undefined : endpointSetting;
  const staticKeys =
    c.S3_ACCESS_KEY_ID !== undefined && c.S3_SECRET_ACCESS_KEY !== undefined
      ? { accessKeyId: c.S3_ACCESS_KEY_ID, secretAccessKey: c.S3_SECRET_ACCESS_KEY }
      : endpoint === LOCAL_S3_ENDPOINT
        ? LOCAL_S3_CREDENTIALS
        : undefined; // the AWS default chain: IAM role, web identity, profile, environment
  return {
    bucket: c.S3_BUCKET,
    endpoint,
    region: c.S3_REGION,
    forcePathStyle: c.S3_FORCE_PATH_STYLE,
    credentials: staticKeys,
    timeoutMs: c.S3_TIMEOUT_MS,
    onConflict: c.S3_ON_CONFLICT,
    sse: c.S3_SSE === 'none' ? undefined : c.S3_SSE === 'AES256' ? { kind: 'AES256' } : { kind: 'aws:kms', kmsKeyId: c.S3_SSE_KMS_KEY_ID ?? '' },
  };
}

/** The registry as both clients reach it: the lookup (consume, replay) and the library (publish). */
export function registrySettings(c: Config): RegistrySettings {
  return {
    url: c.SCHEMA_REGISTRY_URL,
    username: c.SCHEMA_REGISTRY_USERNAME,
    password: c.SCHEMA_REGISTRY_PASSWORD,
    timeoutMs: c.SCHEMA_REGISTRY_TIMEOUT_MS,
    ca: c.SCHEMA_REGISTRY_CA_FILE?.contents,
  };
}

/** The topics and group each command uses, as the start-up check and the refusal lines name them. */
export function kafkaScopeOf(c: Config, command: 'consume' | 'replay' | 'publish', groupId = c.KAFKA_GROUP_ID): KafkaCheckScope {
  const topic = (operations: string): KafkaResource => ({ name: c.KAFKA_TOPIC, setting: 'KAFKA_TOPIC', operations });
  if (command === 'publish') return { topic: topic('WRITE and DESCRIBE') };
  return {
    topic: topic('READ and DESCRIBE'),
    dlqTopic: { name: c.KAFKA_DLQ_TOPIC, setting: 'KAFKA_DLQ_TOPIC', operations: 'WRITE and DESCRIBE' },
    group: { name: groupId, setting: command === 'consume' ? 'KAFKA_GROUP_ID' : '--group', operations: 'READ' },
  };
}

/** How a Kafka failure of this command is told apart: its mechanism, its topic and its group. */
export function refusalScope(c: Config, scope: KafkaCheckScope): KafkaScope {
  return { mechanism: c.KAFKA_SASL_MECHANISM, topic: scope.topic, group: scope.group };
}
