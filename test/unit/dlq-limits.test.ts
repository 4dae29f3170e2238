import { randomBytes } from 'node:crypto';
import { CompressionTypes, type DescribeConfigResponse } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { checkDeadLetterLimits, clearlyTooLarge, DLQ_HEADER_ALLOWANCE_BYTES, headersSize, type LimitsAdmin, recordSizeBound } from '../../src/dlq-limits.ts';
import { batchSize, createErrorFromCode, DEFAULT_MAX_MESSAGE_BYTES, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION } from '../support/kafkajs-wire.ts';

const MIB = 1024 * 1024;

const records = [
  { name: 'empty', key: null, value: null, headers: {} },
  { name: 'small', key: Buffer.from('1700000000'), value: Buffer.from('abc'), headers: { a: '1', multi: ['x', Buffer.from('yz')] } },
  { name: 'long varints', key: randomBytes(300), value: randomBytes(70_000), headers: { ['h'.repeat(200)]: randomBytes(20_000) } },
  { name: '1.5 MiB random', key: Buffer.from('k'), value: randomBytes(1.5 * MIB), headers: {} },
];

describe('recordSizeBound', () => {
  it.each(records)('is at least the batch kafkajs encodes for a $name record, and close to it', async (r) => {
    const real = await batchSize(r, CompressionTypes.None);
    const bound = recordSizeBound(r);
    expect(bound).toBeGreaterThanOrEqual(real);
    expect(bound - real).toBeLessThan(64);
  });
});

describe('headersSize', () => {
  it('counts names and values, one header per array element, in UTF-8 bytes', () => {
    expect(headersSize({ ab: 'cde', multi: [Buffer.from('xy'), 'z'], é: 'é', skipped: undefined })).toBe(5 + 7 + 6 + 4);
  });
});

describe('clearlyTooLarge', () => {
  it.each(records)('never says so of a $name record whose gzipped batch fits exactly', async (r) => {
    const real = await batchSize(r, CompressionTypes.GZIP);
    expect(await clearlyTooLarge(r, real)).toBe(false);
  });

  it('says so of 1.5 MiB of random bytes against the default 1 MiB limit', async () => {
    expect(await clearlyTooLarge({ key: null, value: randomBytes(1.5 * MIB), headers: {} }, DEFAULT_MAX_MESSAGE_BYTES)).toBe(true);
  });

  it('does not of 1.5 MiB that gzip shrinks under the limit', async () => {
    expect(await clearlyTooLarge({ key: null, value: Buffer.alloc(1.5 * MIB, 'tow-and-go '), headers: {} }, DEFAULT_MAX_MESSAGE_BYTES)).toBe(false);
  });

  it('counts huge headers and keys too', async () => {
    expect(await clearlyTooLarge({ key: null, value: null, headers: { blob: randomBytes(1.5 * MIB) } }, DEFAULT_MAX_MESSAGE_BYTES)).toBe(true);
    expect(await clearlyTooLarge({ key: randomBytes(1.5 * MIB), value: null, headers: {} }, DEFAULT_MAX_MESSAGE_BYTES)).toBe(true);
  });
});

/** describeConfigs as kafkajs answers it: one resource with the asked entry, or the bare protocol error it bails with. */
function fakeAdmin(answers: { topic?: string | Error; broker?: string | Error; controller?: number | null }): LimitsAdmin & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    describeCluster: async () => ({ brokers: [{ nodeId: 7, host: '127.0.0.1', port: 9092 }], controller: answers.controller ?? 7, clusterId: 'c' }),
    describeConfigs: async ({ resources }): Promise<DescribeConfigResponse> => {
      const [resource] = resources;
      if (resource === undefined) throw new Error('no resource');
      const configName = resource.configNames?.[0] ?? '';
      asked.push(`${resource.type}/${resource.name}/${configName}`);
      const answer = resource.type === 2 ? answers.topic : answers.broker;
      if (answer instanceof Error) throw answer;
      if (answer === undefined) throw new Error(`unexpected describe of ${resource.name}`);
      const entry = { configName, configValue: answer, readOnly: false, isDefault: true, configSource: 5, isSensitive: false, configSynonyms: [] };
      return {
        throttleTime: 0,
        resources: [{ errorCode: 0, errorMessage: '', resourceType: resource.type, resourceName: resource.name, configEntries: [entry] }],
      };
    },
  };
}

describe('checkDeadLetterLimits', () => {
  it('reports the topic limit and the envelope fallback when MAX_PAYLOAD_BYTES is over it', async () => {
    const admin = fakeAdmin({ topic: '1048588' });
    const limits = await checkDeadLetterLimits(admin, 'tow-and-go.updates.dlq', 4 * MIB);
    expect(admin.asked).toEqual(['2/tow-and-go.updates.dlq/max.message.bytes']);
    expect(limits).toEqual({
      maxMessageBytes: 1_048_588,
      level: 'warn',
      line:
        'DLQ topic tow-and-go.updates.dlq accepts 1048588 bytes per record; MAX_PAYLOAD_BYTES is 4194304: records over the limit are dead-lettered as envelopes ' +
        '(headers, size and SHA-256; value omitted); for full copies set its max.message.bytes to at least 4210688',
    });
  });

  it('is quiet (info) when every value up to MAX_PAYLOAD_BYTES fits with room for headers', async () => {
    const limits = await checkDeadLetterLimits(fakeAdmin({ topic: String(4 * MIB + DLQ_HEADER_ALLOWANCE_BYTES) }), 'd', 4 * MIB);
    expect(limits.level).toBe('info');
    expect(limits.maxMessageBytes).toBe(4 * MIB + DLQ_HEADER_ALLOWANCE_BYTES);
    expect(limits.line).toBe('DLQ topic d accepts 4210688 bytes per record; MAX_PAYLOAD_BYTES is 4194304: dead-lettered values fit as full copies');
  });

  it('warns one byte short of that room', async () => {
    const limits = await checkDeadLetterLimits(fakeAdmin({ topic: String(4 * MIB + DLQ_HEADER_ALLOWANCE_BYTES - 1) }), 'd', 4 * MIB);
    expect(limits.level).toBe('warn');
  });

  it("falls back to the controller's message.max.bytes when the topic does not exist, and says dead-lettering will stall", async () => {
    const admin = fakeAdmin({ topic: createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION), broker: '2000000' });
    const limits = await checkDeadLetterLimits(admin, 'd', 4 * MIB);
    expect(admin.asked).toEqual(['2/d/max.message.bytes', '4/7/message.max.bytes']);
    expect(limits).toEqual({
      maxMessageBytes: 2_000_000,
      level: 'warn',
      line: "DLQ topic d does not exist: dead-lettering stalls until it is created (the broker's default accepts 2000000 bytes per record)",
    });
  });

  it('does not fail the start when the config cannot be read (no DescribeConfigs ACL): the limit stays unknown', async () => {
    const limits = await checkDeadLetterLimits(fakeAdmin({ topic: createErrorFromCode(TOPIC_AUTHORIZATION_FAILED) }), 'd', 4 * MIB);
    expect(limits.maxMessageBytes).toBeUndefined();
    expect(limits.level).toBe('warn');
    expect(limits.line).toMatch(
      /^could not read max\.message\.bytes of DLQ topic d \(Not authorized to access topics.*\): records the broker refuses as too large are dead-lettered as envelopes/,
    );
  });

  it.each(['', 'abc', '0', '-1'])('treats a max.message.bytes of %j as unreadable', async (value) => {
    expect((await checkDeadLetterLimits(fakeAdmin({ topic: value }), 'd', 4 * MIB)).maxMessageBytes).toBeUndefined();
  });

  it('rethrows a bug instead of hiding it in the line', async () => {
    await expect(checkDeadLetterLimits(fakeAdmin({ topic: new TypeError('boom') }), 'd', 4 * MIB)).rejects.toThrow(TypeError);
  });
});
