/**
 * `tow-and-go publish [file|-]`: reads one snapshot (a JSON document) or many (JSON Lines),
 * validates every one with the same zod schema the consumer uses, and only then encodes and
 * produces them all, keyed by last_modified. Invalid input sends nothing.
 */
import { readFile } from 'node:fs/promises';
import { CompressionTypes, type Kafka } from 'kafkajs';
import type { AvroEncoder } from './codec.ts';
import { InputError, KafkaUnavailableError, SinkError } from './errors.ts';
import { type Snapshot, type SnapshotLimits, snapshotSchema, summarizeIssues } from './snapshot.ts';
import { createProducer } from './source/kafka.ts';

export interface ParsedInput {
  readonly snapshots: readonly Snapshot[];
}

/**
 * Pure: the text of a file or of stdin to validated snapshots. A whole-text JSON document is one
 * snapshot; otherwise every non-blank line is one. Errors name the source, the line and the field.
 */
export function parseSnapshots(text: string, source: string, limits: SnapshotLimits, nowSeconds: number): ParsedInput {
  const schema = snapshotSchema(limits, nowSeconds);
  const documents = splitDocuments(text);
  if (documents.length === 0) throw new InputError(`${source}: no snapshot in the input`);
  const snapshots = documents.map(({ line, text: doc }) => {
    let value: unknown;
    try {
      value = JSON.parse(doc);
    } catch (error) {
      throw new InputError(`${source}:${line}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    const result = schema.safeParse(value);
    if (!result.success) throw new InputError(`${source}:${line}: invalid snapshot: ${summarizeIssues(result.error.issues)}`, { cause: result.error.issues });
    return result.data;
  });
  return { snapshots };
}

function splitDocuments(text: string): { line: number; text: string }[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    JSON.parse(trimmed);
    const leading = text.length - text.trimStart().length;
    return [{ line: 1 + countNewlines(text.slice(0, leading)), text: trimmed }];
  } catch {
    return text
      .split('\n')
      .map((t, i) => ({ line: i + 1, text: t.trim() }))
      .filter((d) => d.text !== '');
  }
}

function countNewlines(s: string): number {
  return s.split('\n').length - 1;
}

export async function readInput(path: string | undefined): Promise<{ text: string; source: string }> {
  if (path === undefined || path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return { text: Buffer.concat(chunks).toString('utf8'), source: 'stdin' };
  }
  try {
    return { text: await readFile(path, 'utf8'), source: path };
  } catch (error) {
    throw new InputError(`${path}: cannot read (${error instanceof Error && 'code' in error ? String(error.code) : 'error'})`);
  }
}

/**
 * kafkajs puts one send's messages for a partition into one record batch, and the broker refuses a
 * batch over `message.max.bytes` (1 MiB by default) as a whole. So a send carries at most this many
 * bytes (a single record bigger than the broker's limit still fails, with the broker's reason).
 */
const MAX_SEND_BYTES = 768 * 1024;
const MAX_SEND_MESSAGES = 500;

/**
 * Produces every snapshot; returns the schema id used. Sends are bounded by bytes and by count, so
 * memory stays flat for big inputs and big snapshots never make a batch the broker refuses.
 * `compression` is the record-batch codec (kafkajs' type; see compression.ts for what each writes).
 */
export async function publishSnapshots(
  kafka: Kafka,
  topic: string,
  encoder: AvroEncoder,
  snapshots: readonly Snapshot[],
  compression: CompressionTypes = CompressionTypes.None,
): Promise<number> {
  const schemaId = await encoder.schemaId();
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    let pending: { key: string; value: Buffer }[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pending.length > 0) await producer.send({ topic, acks: -1, compression, messages: pending });
      pending = [];
      pendingBytes = 0;
    };
    for (const s of snapshots) {
      const message = { key: String(s.last_modified), value: await encoder.encode(s) };
      if (pending.length >= MAX_SEND_MESSAGES || pendingBytes + message.value.length > MAX_SEND_BYTES) await flush();
      pending.push(message);
      pendingBytes += message.value.length;
    }
    await flush();
  } catch (error) {
    if (error instanceof SinkError) throw error;
    throw new KafkaUnavailableError(`publishing to ${topic} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    await producer.disconnect();
  }
  return schemaId;
}
