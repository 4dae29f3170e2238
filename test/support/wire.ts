/** The Confluent wire format written by hand: magic byte 0, big-endian schema id, Avro body. */
export function wire(schemaId: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(0, 0);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, body]);
}
