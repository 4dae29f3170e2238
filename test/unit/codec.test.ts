import avro from 'avsc';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AvroCodec, AvroEncoder, createRegistry, loadSnapshotSchema, type RegistrySettings, valueSubject } from '../../src/codec.ts';
import { DecodeError, RegistryUnavailableError } from '../../src/errors.ts';
import { type FakeAnswer, type FakeRegistry, fakeRegistry } from '../support/fake-registry.ts';
import { wire } from '../support/wire.ts';

/** Set in beforeAll to a port nothing listens on. */
let settings: RegistrySettings = { url: 'http://127.0.0.1:9', timeoutMs: 200 };
const { type, raw } = loadSnapshotSchema();

beforeAll(async () => {
  const closed = await fakeRegistry(() => ({ status: 200 }));
  await closed.close();
  settings = { url: closed.url, timeoutMs: 200 };
});

function codec(): AvroCodec {
  return new AvroCodec(settings, type);
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

describe('AvroCodec.decode with a registry', () => {
  let registry: FakeRegistry | undefined;
  afterEach(async () => {
    await registry?.close();
    registry = undefined;
  });

  const SNAPSHOT = { last_modified: 1_684_216_515, tow_and_go: [{ link_id: 17_806_054, segment_id: 457_160_414 }] };
  const reader = JSON.parse(raw) as { namespace: string };

  /** A codec whose registry answers every id with `answer`. */
  async function codecWith(answer: FakeAnswer): Promise<AvroCodec> {
    registry = await fakeRegistry(() => answer);
    return new AvroCodec({ url: registry.url, timeoutMs: 2000 }, type);
  }

  async function decodeWith(answer: FakeAnswer, body: Buffer): Promise<unknown> {
    return (await codecWith(answer)).decode(wire(42, body), 1 << 20).then(
      (d) => d,
      (e: unknown) => e,
    );
  }

  it('decodes a record written with the snapshot schema, and fetches each id once', async () => {
    const c = await codecWith({ status: 200, body: { schema: raw } });
    const bytes = wire(42, type.toBuffer(SNAPSHOT));
    expect(await c.decode(bytes, 1024)).toEqual({ schemaId: 42, value: SNAPSHOT });
    expect(await c.decode(bytes, 1024)).toEqual({ schemaId: 42, value: SNAPSHOT });
    expect(registry?.requests.map((r) => r.path)).toEqual(['/schemas/ids/42']);
  });

  it('decodes a writer that registered the same records under its own namespace', async () => {
    const writer = { ...reader, namespace: 'org.example.feed' };
    const decoded = await decodeWith({ status: 200, body: { schema: JSON.stringify(writer) } }, avro.Type.forSchema(writer as avro.Schema).toBuffer(SNAPSHOT));
    expect(decoded).toEqual({ schemaId: 42, value: SNAPSHOT });
  });

  it('still accepts the library client as a first argument (main.ts and bench/codec.ts pass it)', async () => {
    registry = await fakeRegistry(() => ({ status: 200, body: { schema: raw } }));
    const s = { url: registry.url, timeoutMs: 2000 };
    const c = new AvroCodec(s, type);
    expect(await c.decode(wire(42, type.toBuffer(SNAPSHOT)), 1024)).toEqual({ schemaId: 42, value: SNAPSHOT });
  });

  it('refuses an incompatible writer as SCHEMA_INCOMPATIBLE, naming the field', async () => {
    const writer = {
      type: 'record',
      name: 'TowAndGoSnapshot',
      fields: [
        { name: 'last_modified', type: 'long' },
        { name: 'tow_and_go', type: { type: 'array', items: { type: 'record', name: 'L', fields: [{ name: 'link_id', type: 'long' }] } } },
      ],
    };
    const error = await decodeWith({ status: 200, body: { schema: JSON.stringify(writer) } }, Buffer.from([0]));
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).code).toBe('SCHEMA_INCOMPATIBLE');
    expect((error as DecodeError).schemaId).toBe(42);
    expect((error as DecodeError).message).toBe(
      'schema id 42 cannot be read as the snapshot schema: tow_and_go[]: writer record "L" cannot be read as "com.towandgo.traffic.TowAndGoLink": no name or alias matches',
    );
  });

  it.each<[string, unknown, string]>([
    ['a JSON Schema', { schemaType: 'JSON', schema: '{"type":"object"}' }, 'schema id 42 is a JSON schema, not Avro'],
    ['a Protobuf schema', { schemaType: 'PROTOBUF', schema: 'syntax = "proto3"; message M { int64 a = 1; }' }, 'schema id 42 is a PROTOBUF schema, not Avro'],
    ['an unknown schemaType', { schemaType: 'XSD', schema: '<xs:schema/>' }, 'schema id 42 is a XSD schema, not Avro'],
    [
      'an Avro schema with references',
      { schema: '{"type":"record","name":"S","fields":[{"name":"l","type":"other.Link"}]}', references: [{ name: 'other.Link', subject: 'link', version: 1 }] },
      'schema id 42 uses 1 schema reference(s), which this service does not resolve',
    ],
    ['text that is not JSON', { schema: 'record S {' }, 'schema id 42 is not an Avro schema that avsc can build: '],
    ['JSON that is not Avro', { schema: '{"type":"nope"}' }, 'schema id 42 is not an Avro schema that avsc can build: unknown type: "nope"'],
  ])('refuses %s as SCHEMA_INCOMPATIBLE (permanent, never a stall)', async (_what, body, message) => {
    const error = await decodeWith({ status: 200, body }, Buffer.from([0]));
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).code).toBe('SCHEMA_INCOMPATIBLE');
    expect((error as DecodeError).retryable).toBe(false);
    expect((error as DecodeError).message.startsWith(message)).toBe(true);
  });

  it('reports an unknown id (404/40403) as SCHEMA_UNKNOWN', async () => {
    const error = await decodeWith({ status: 404, body: { error_code: 40403, message: 'Schema 42 not found.' } }, Buffer.from([0]));
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).code).toBe('SCHEMA_UNKNOWN');
  });

  it("puts avsc's own reason in AVRO_DECODE_FAILED, never the bytes", async () => {
    // last_modified = 2^61 (zig-zag varint 2^62): well-formed Avro, but past what a JS number holds exactly.
    const body = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x00]);
    const error = await decodeWith({ status: 200, body: { schema: raw } }, body);
    expect(error).toBeInstanceOf(DecodeError);
    expect((error as DecodeError).code).toBe('AVRO_DECODE_FAILED');
    expect((error as DecodeError).message).toBe('Avro body does not match writer schema 42: avsc: potential precision loss');
  });

  it("keeps the Avro guard's reason for malformed bodies", async () => {
    const error = await decodeWith({ status: 200, body: { schema: raw } }, Buffer.from([0x02]));
    expect((error as DecodeError).code).toBe('AVRO_DECODE_FAILED');
    expect((error as DecodeError).message).toBe('Avro body does not match writer schema 42: truncated at byte 1 reading tow_and_go');
  });
});

describe("createRegistry (the publisher's library client)", () => {
  it('turns credentials in the URL into basic auth, as the lookup does', async () => {
    const registry = await fakeRegistry(
      (r) => (r.method === 'GET' ? { status: 200, body: { compatibilityLevel: 'BACKWARD' } } : { status: 200, body: { id: 3 } }),
      'api-key:s3cret',
    );
    try {
      const encoder = new AvroEncoder(createRegistry({ url: registry.url, timeoutMs: 2000 }), raw, 'topic-value');
      expect(await encoder.schemaId()).toBe(3);
      const basic = `Basic ${Buffer.from('api-key:s3cret').toString('base64')}`;
      expect(registry.requests.map((r) => [r.method, r.path, r.headers.authorization])).toEqual([
        ['GET', '/config/topic-value', basic],
        ['POST', '/subjects/topic-value/versions', basic],
      ]);
    } finally {
      await registry.close();
    }
  });
});

describe('valueSubject', () => {
  it('follows TopicNameStrategy', () => {
    expect(valueSubject('tow-and-go.updates')).toBe('tow-and-go.updates-value');
  });
});
