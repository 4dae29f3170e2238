import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseReconcileArgs } from '../../../src/archive/reconcile-command.ts';
import { BodyInspector, withRetries } from '../../../src/archive/reconcile-inspect.ts';
import { holdingDeadLetters, repairMissing } from '../../../src/archive/reconcile-repair.ts';
import { DecodeError, InputError, RegistryUnavailableError } from '../../../src/errors.ts';
import type { BatchControl, BatchResult } from '../../../src/pipeline.ts';
import { contentHash, objectBody } from '../../../src/snapshot.ts';
import { inlineBodies } from '../../../src/snapshot-transcoder.ts';
import { FakeDecoder, NOW, record } from '../../support/pipeline-fakes.ts';

const log = pino({ level: 'silent' });
const retry = { retryInitialMs: 1, retryMaxMs: 2, attempts: 3 };
const limits = { minLastModified: NOW - 1000, maxFutureSkewSeconds: 60, maxLinks: 2 };

function inspector(decoder = new FakeDecoder()): BodyInspector {
  return new BodyInspector(decoder, inlineBodies, { limits, maxPayloadBytes: 1_000_000, retry }, log);
}

function value(lastModified: number, links: { link_id: number; segment_id: number | null }[] = [{ link_id: 1, segment_id: null }]): Buffer {
  return Buffer.from(JSON.stringify({ last_modified: lastModified, tow_and_go: links }));
}

describe('reconcile: a record as the pipeline would build it', () => {
  it('gives the last_modified and the hash of the canonical body, accepted under the current limits', async () => {
    const body = await inspector().body(value(NOW), NOW);
    const json = objectBody({ last_modified: NOW, tow_and_go: [{ link_id: 1, segment_id: null }] });
    expect(body).toEqual({ kind: 'built', lastModified: NOW, sha256: contentHash(json), acceptance: { kind: 'accepted' } });
  });

  it('still gives last_modified and hash for a snapshot the limits refuse, and says which rule refuses it', async () => {
    const old = await inspector().body(value(NOW - 5000), NOW);
    expect(old).toMatchObject({ kind: 'built', lastModified: NOW - 5000, acceptance: { kind: 'before_min' } });
    const links = [1, 2, 3].map((link_id) => ({ link_id, segment_id: null }));
    const big = await inspector().body(value(NOW, links), NOW);
    expect(big).toMatchObject({ kind: 'built', lastModified: NOW, acceptance: { kind: 'refused', code: 'VALIDATION_FAILED' } });
    // Old and too big: refused for its size, not merely older than the kept history.
    expect(await inspector().body(value(NOW - 5000, links), NOW)).toMatchObject({ acceptance: { kind: 'refused' } });
  });

  it('names why a record is no snapshot at all', async () => {
    expect(await inspector().body(null, NOW)).toMatchObject({ kind: 'undecodable', code: 'PAYLOAD_NULL' });
    expect(await inspector().body(value(NOW, [{ link_id: -1, segment_id: null }]), NOW)).toMatchObject({ kind: 'undecodable', code: 'VALIDATION_FAILED' });
  });

  it('retries a registry that may come back, and fails the run when it does not', async () => {
    const flaky = new FakeDecoder();
    let failures = 2;
    flaky.before = () => {
      if (failures-- > 0) throw new RegistryUnavailableError('registry down');
    };
    expect(await inspector(flaky).body(value(NOW), NOW)).toMatchObject({ kind: 'built' });
    const down = new FakeDecoder();
    down.before = () => {
      throw new RegistryUnavailableError('registry down');
    };
    await expect(inspector(down).body(value(NOW), NOW)).rejects.toBeInstanceOf(RegistryUnavailableError);
    expect(down.calls).toHaveLength(retry.attempts);
  });

  it('does not retry a permanent error or a bug', async () => {
    let calls = 0;
    await expect(
      withRetries(
        'x',
        async () => {
          calls++;
          throw new DecodeError('SCHEMA_UNKNOWN', 'unknown');
        },
        retry,
        log,
      ),
    ).rejects.toBeInstanceOf(DecodeError);
    await expect(
      withRetries(
        'x',
        async () => {
          calls++;
          throw new TypeError('bug');
        },
        retry,
        log,
      ),
    ).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(2);
  });
});

describe('reconcile arguments', () => {
  it('defaults to the whole topic, report only', () => {
    expect(parseReconcileArgs([])).toEqual({ from: 'earliest', to: 'latest', repair: false });
    expect(parseReconcileArgs(['--from', '0:5,2:9', '--to', '2024-05-01T00:00:00Z', '--repair'])).toEqual({
      from: '0:5,2:9',
      to: '2024-05-01T00:00:00Z',
      repair: true,
    });
  });

  it('refuses bad usage with an InputError (exit 2)', () => {
    for (const args of [['--frm', 'earliest'], ['extra'], ['--from', 'yesterday'], ['--to', '0:5'], ['--repair=yes']]) {
      expect(() => parseReconcileArgs(args), args.join(' ')).toThrow(InputError);
    }
  });
});

describe('reconcile --repair', () => {
  it('fetches a stalled partition again from its first unfinished record, in offset order, and gives up after its attempts', async () => {
    const seen: string[][] = [];
    const pipeline = {
      processBatch: async (records: readonly { offset: string }[], control: BatchControl): Promise<BatchResult> => {
        seen.push(records.map((r) => r.offset));
        if (seen.length === 1) {
          await control.checkpoint('3');
          return { retryAfterMs: 1 };
        }
        return {};
      },
    };
    await repairMissing(pipeline, [record('9'), record('3'), record('5')], 3, log);
    expect(seen).toEqual([
      ['3', '5', '9'],
      ['5', '9'],
    ]);
    let calls = 0;
    const stuck = {
      processBatch: async (): Promise<BatchResult> => {
        calls++;
        return { retryAfterMs: 1 };
      },
    };
    await repairMissing(stuck, [record('1')], 3, log);
    expect(calls).toBe(3);
  });

  it("the repair's producer sends nothing: what the pipeline would dead-letter is only held", async () => {
    const held: unknown[] = [];
    const sent: unknown[] = [];
    const real = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING }).producer();
    const producer: Producer = {
      ...real,
      send: async (r) => {
        sent.push(r);
        return [];
      },
    };
    await holdingDeadLetters(producer, (m) => held.push(m)).send({ topic: 'dlq', messages: [{ value: 'x' }] });
    expect(held).toEqual([{ value: 'x' }]);
    expect(sent).toEqual([]);
  });
});
