import { describe, expect, it } from 'vitest';
import { AvroCodec, createRegistry, loadSnapshotSchema, type RegistrySettings, valueSubject } from '../../src/codec.ts';
import { DecodeError, RegistryUnavailableError } from '../../src/errors.ts';
import { wire } from '../support/wire.ts';

const settings: RegistrySettings = { url: 'http://127.0.0.1:1', timeoutMs: 200 };
const { type, raw } = loadSnapshotSchema();

function codec(): AvroCodec {
  return new AvroCodec(createRegistry(settings), settings, type);
}

async function decodeError(bytes: Buffer | null, maxPayloadBytes = 1024): Promise<DecodeError> {
  const error = await codec()
    .decode(bytes, maxPayloadBytes)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  if (error instanceof DecodeError) return error;
  throw new Error(`expected a DecodeError, got ${String(error)}`);
}

describe('loadSnapshotSchema', () => {
  it('loads the snapshot record schema and its raw text', () => {
    expect(type.name).toBe('com.towandgo.traffic.TowAndGoSnapshot');
    expect(JSON.parse(raw).fields.map((f: { name: string }) => f.name)).toEqual(['last_modified', 'tow_and_go']);
  });
});

describe('AvroCodec.decode checks before any registry lookup', () => {
  it('rejects a null value (tombstone) as PAYLOAD_NULL', async () => {
    const error = await decodeError(null);
    expect(error.code).toBe('PAYLOAD_NULL');
    expect(error.retryable).toBe(false);
    expect(error.schemaId).toBeUndefined();
  });

  it('rejects a value over the size limit as PAYLOAD_TOO_LARGE, naming both sizes', async () => {
    const error = await decodeError(wire(1, Buffer.alloc(100)), 64);
    expect(error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(error.message).toContain('105 bytes');
    expect(error.message).toContain('64-byte limit');
  });

  it('checks the size limit inclusively: a value of exactly the limit reaches the header checks', async () => {
    const error = await codec()
      .decode(Buffer.from([1, 0, 0, 0, 1]), 5)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).code).toBe('WIRE_FORMAT_INVALID');
  });

  it.each([0, 1, 4])('rejects a %i-byte value, shorter than the Confluent header, as WIRE_FORMAT_INVALID', async (length) => {
    const error = await decodeError(Buffer.alloc(length));
    expect(error.code).toBe('WIRE_FORMAT_INVALID');
    expect(error.message).toContain('shorter than the 5-byte Confluent header');
  });

  it.each([1, 0x7b, 0xff])('rejects magic byte %i as WIRE_FORMAT_INVALID', async (magic) => {
    const bytes = wire(1, type.toBuffer({ last_modified: 1, tow_and_go: [] }));
    bytes[0] = magic;
    const error = await decodeError(bytes);
    expect(error.code).toBe('WIRE_FORMAT_INVALID');
    expect(error.message).toContain(`wrong magic byte ${magic}`);
  });
});

describe('AvroCodec.decode with an unreachable registry', () => {
  it('fails with a retryable RegistryUnavailableError, never a DecodeError', async () => {
    const c = codec();
    const bytes = wire(7, type.toBuffer({ last_modified: 1_700_000_000, tow_and_go: [] }));
    const error = await c.decode(bytes, 1024).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect(error).not.toBeInstanceOf(DecodeError);
    expect((error as RegistryUnavailableError).retryable).toBe(true);
    expect((error as RegistryUnavailableError).code).toBe('REGISTRY_UNAVAILABLE');
    expect((error as RegistryUnavailableError).message).toContain('id 7');
  });

  it('does not cache the failed lookup: the next decode asks again and is still retryable', async () => {
    const c = codec();
    const bytes = wire(8, type.toBuffer({ last_modified: 1_700_000_000, tow_and_go: [] }));
    await expect(c.decode(bytes, 1024)).rejects.toBeInstanceOf(RegistryUnavailableError);
    await expect(c.decode(bytes, 1024)).rejects.toBeInstanceOf(RegistryUnavailableError);
  });
});

describe('valueSubject', () => {
  it('follows TopicNameStrategy', () => {
    expect(valueSubject('tow-and-go.updates')).toBe('tow-and-go.updates-value');
  });
});
