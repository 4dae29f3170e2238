import avro from 'avsc';
import { loadSnapshotSchema } from '../../src/codec.ts';
import type { Snapshot } from '../../src/snapshot.ts';

/** The Confluent wire format written by hand: magic byte 0, big-endian schema id, Avro body. */
export function wire(schemaId: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(0, 0);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, body]);
}

const snapshotType = avro.Type.forSchema(JSON.parse(loadSnapshotSchema().raw) as avro.Schema);

/** Snapshots as records for produceRaw: keyed by last_modified, Confluent-framed, each on its partition. */
export function framedSnapshots(schemaId: number, items: readonly { snapshot: Snapshot; partition: number }[]) {
  return items.map(({ snapshot, partition }) => ({ key: String(snapshot.last_modified), partition, value: wire(schemaId, snapshotType.toBuffer(snapshot)) }));
}

/** Avro zig-zag varint of any long (BigInt), including values no double holds: hand-encoded Avro for tests. */
export function avroLong(n: bigint): Buffer {
  let z = n >= 0n ? n * 2n : -n * 2n - 1n;
  const out: number[] = [];
  do {
    const low = Number(z & 0x7fn);
    z >>= 7n;
    out.push(z > 0n ? low | 0x80 : low);
  } while (z > 0n);
  return Buffer.from(out);
}
