/**
 * Confluent-framed Avro values for records that third-party producers then send. The encoder is the
 * project's (registry + avsc); what these tests probe is the producers' compression, not the Avro.
 */
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../../src/codec.ts';
import type { Snapshot } from '../../src/snapshot.ts';
import type { TestEnv } from './stack.ts';

export interface KeyedValue {
  readonly key: string;
  readonly value: Buffer;
}

/** One record per snapshot, keyed by last_modified as `publish` keys them. */
export async function encodeSnapshots(t: TestEnv, snapshots: readonly Snapshot[]): Promise<KeyedValue[]> {
  const registry = createRegistry({ url: t.config.SCHEMA_REGISTRY_URL, timeoutMs: 10_000 });
  const encoder = new AvroEncoder(registry, loadSnapshotSchema().raw, valueSubject(t.topic));
  return Promise.all(snapshots.map(async (s) => ({ key: String(s.last_modified), value: await encoder.encode(s) })));
}
