#!/usr/bin/env node
/**
 * tow-and-go consume | publish [file|-] | replay … | offsets reset … | stack up|down|status|…
 * Exit codes: 0 done, 1 failed at run time, 2 bad usage, input or configuration.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from './codec.ts';
import { type Config, loadConfig } from './config.ts';
import { ConfigError, describeError, InputError } from './errors.ts';
import { createLogger } from './logger.ts';
import { startConsumerService } from './main.ts';
import { parseSnapshots, publishSnapshots, readInput } from './publish.ts';
import { createKafka } from './source/kafka.ts';

const USAGE = `usage:
  tow-and-go consume                      run the sink (consumer group) until SIGTERM/SIGINT
  tow-and-go publish [file|-]             publish one JSON snapshot or JSON Lines (default: stdin)
  tow-and-go stack up|down|status|clean   the local Kafka + registry + S3 stack
  tow-and-go stack start|stop|restart <kafka|registry|s3proxy>`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'consume':
      return consume(loadConfig(process.env));
    case 'publish':
      return publish(loadConfig(process.env), args[0]);
    case 'stack':
      return stack(args);
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

async function consume(config: Config): Promise<number> {
  const log = createLogger(config.LOG_LEVEL);
  const service = await startConsumerService(config, log);
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const reason = await Promise.race([signalled, service.failed.then(() => 'fatal')]);
  const inTime = await service.stop(reason);
  return reason === 'fatal' || !inTime ? 1 : 0;
}

async function publish(config: Config, path: string | undefined): Promise<number> {
  const { text, source } = await readInput(path);
  const { snapshots } = parseSnapshots(
    text,
    source,
    { minLastModified: config.MIN_LAST_MODIFIED, maxFutureSkewSeconds: config.MAX_FUTURE_SKEW_SECONDS, maxLinks: config.MAX_LINKS },
    Math.floor(Date.now() / 1000),
  );
  const log = createLogger(config.LOG_LEVEL);
  const registry = createRegistry({
    url: config.SCHEMA_REGISTRY_URL,
    username: config.SCHEMA_REGISTRY_USERNAME,
    password: config.SCHEMA_REGISTRY_PASSWORD,
    timeoutMs: config.SCHEMA_REGISTRY_TIMEOUT_MS,
  });
  const encoder = new AvroEncoder(registry, loadSnapshotSchema().raw, valueSubject(config.KAFKA_TOPIC));
  const kafka = createKafka(config, log.child({ component: 'kafka' }));
  const schemaId = await publishSnapshots(kafka, config.KAFKA_TOPIC, encoder, snapshots);
  process.stdout.write(`published ${snapshots.length} snapshot(s) to ${config.KAFKA_TOPIC} with schema id ${schemaId}\n`);
  return 0;
}

function stack(args: readonly string[]): number {
  const script = fileURLToPath(new URL('../stack/stack.sh', import.meta.url));
  const result = spawnSync('bash', [script, ...args], { stdio: 'inherit' });
  return result.status ?? 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // kafkajs and the SDK may keep sockets alive briefly; the command is done.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (error: unknown) => {
    const permanentInput = error instanceof ConfigError || error instanceof InputError;
    process.stderr.write(`tow-and-go: ${describeError(error)}\n`);
    process.exit(permanentInput ? 2 : 1);
  },
);
