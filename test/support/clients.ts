/**
 * Kafka clients we did not write, driven from tests: Kafka's own Java client (producer and
 * console consumer) and librdkafka (python3-confluent-kafka to produce, kcat to consume). They
 * compress and decompress with their own codecs, so a test that passes through them cannot merely
 * agree with ours.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT } from './paths.ts';

export const BOOTSTRAP = '127.0.0.1:9092';
/** Debian's interpreter: python3-confluent-kafka is installed for it, not for another python3. */
const PYTHON = '/usr/bin/python3';

export type ProduceStep = { readonly partition: number; readonly key: string; readonly value: Buffer } | 'flush' | 'commit' | 'abort';

export interface ProduceOptions {
  readonly topic: string;
  /** Kafka's `compression.type`: none, gzip, snappy, lz4, zstd. */
  readonly compression: string;
  readonly transactionalId?: string;
}

function stepsText(steps: readonly ProduceStep[]): string {
  return `${steps
    .map((s) => (typeof s === 'string' ? s : `record ${s.partition} ${Buffer.from(s.key).toString('base64')} ${s.value.toString('base64')}`))
    .join('\n')}\n`;
}

function run(what: string, command: string, args: readonly string[], input: string | undefined, timeoutMs = 120_000): Buffer {
  const result = spawnSync(command, args, { input, timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 });
  if (result.error !== undefined || result.status !== 0) {
    const stderr = result.stderr?.toString('utf8') ?? '';
    throw new Error(`${what} failed (status ${String(result.status)}${result.error ? `, ${result.error.message}` : ''}): ${stderr.slice(-2000)}`);
  }
  return result.stdout;
}

export function kafkaClasspath(): string {
  return readFileSync(`${ROOT}.stack/install/kafka.classpath`, 'utf8').trim();
}

/** The JVM flags stack.sh uses for Kafka's tools: quick start, quiet logging. */
function jvm(classpath: string): string[] {
  return [
    '-Xmx256m',
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    '-Dstack.log.level=WARN',
    `-Dlog4j2.configurationFile=${ROOT}stack/kafka/log4j2.properties`,
    '-cp',
    classpath,
  ];
}

/** Produces with Kafka's Java client (test/support/JavaProduce.java, run as a source file). */
export function produceWithJava(o: ProduceOptions, steps: readonly ProduceStep[]): void {
  const args = [...jvm(kafkaClasspath()), `${ROOT}test/support/JavaProduce.java`, BOOTSTRAP, o.topic, o.compression];
  if (o.transactionalId !== undefined) args.push(o.transactionalId);
  run(`Java producer (${o.compression})`, 'java', args, stepsText(steps));
}

/** Produces with librdkafka through python3-confluent-kafka (test/support/rdkafka-produce.py). */
export function produceWithLibrdkafka(o: ProduceOptions, steps: readonly ProduceStep[]): void {
  const args = [`${ROOT}test/support/rdkafka-produce.py`, BOOTSTRAP, o.topic, o.compression];
  if (o.transactionalId !== undefined) args.push(o.transactionalId);
  run(`librdkafka producer (${o.compression})`, PYTHON, args, stepsText(steps));
}

/**
 * Kafka's console consumer, from the beginning, until `count` records. It writes each key and raw
 * value as they are (no deserializer), so the output is exactly `key \t value \n` per record.
 */
export function consumeWithJavaConsole(topic: string, count: number): Buffer {
  const args = [
    ...jvm(kafkaClasspath()),
    'org.apache.kafka.tools.consumer.ConsoleConsumer',
    '--bootstrap-server',
    BOOTSTRAP,
    '--topic',
    topic,
    '--from-beginning',
    '--max-messages',
    String(count),
    '--timeout-ms',
    '60000',
    // (--property still works but prints a deprecation notice to stdout, into the records.)
    '--formatter-property',
    'print.key=true',
    '--formatter-property',
    'key.separator=\t',
  ];
  return run('Java console consumer', 'java', args, undefined);
}

/** kcat (librdkafka) from the beginning to the end of every partition: `key \t value \n` per record. */
export function consumeWithKcat(topic: string): Buffer {
  return run('kcat', 'kcat', ['-C', '-b', BOOTSTRAP, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k\t%s\n'], undefined);
}

/** What both console consumers print for these records, in order. */
export function keyTabValueLines(records: ReadonlyArray<{ readonly key: string; readonly value: Buffer }>): Buffer {
  return Buffer.concat(records.flatMap((r) => [Buffer.from(`${r.key}\t`), r.value, Buffer.from('\n')]));
}
