import { describe, expect, it } from 'vitest';
import { EXPANSION } from '../../src/batch/window.ts';
import { DecodeError, KafkaUnavailableError, RegistryUnavailableError, S3RejectedError, S3UnavailableError } from '../../src/errors.ts';
import type { Metrics } from '../../src/metrics.ts';
import { contentHash, objectBody } from '../../src/snapshot.ts';
import { deferred, FakeControl, type FakeSink, flush, NOW, once, record, SCHEMA_ID, setup, until } from '../support/pipeline-fakes.ts';

// ---------------------------------------------------------------------------------------------

describe('Pipeline.processOnce', () => {
  it('writes the canonical body under <prefix><last_modified>.json with its hash and lineage', async () => {
    const { pipeline, sink, metrics } = setup();
    const r = record('42', NOW, { partition: 3, links: [{ link_id: 9, segment_id: 4 }] });
    await expect(once(pipeline, r)).resolves.toBe('created');
    const expectedBody = objectBody({ last_modified: NOW, tow_and_go: [{ link_id: 9, segment_id: 4 }] });
    expect(sink.writes).toHaveLength(1);
    const written = sink.writes[0];
    expect(written?.key).toBe(`tow-and-go/${NOW}.json`);
    expect(written?.body.equals(expectedBody)).toBe(true);
    expect(written?.sha256).toBe(contentHash(expectedBody));
    expect(written?.lineage).toEqual({ topic: 'tow-and-go.updates', partition: 3, offset: '42', schemaId: SCHEMA_ID });
    expect(metrics.bytesWritten.get()).toBe(expectedBody.length);
  });

  it('counts no written bytes for an identical re-delivery', async () => {
    const { pipeline, metrics } = setup();
    await expect(once(pipeline, record('1'))).resolves.toBe('created');
    const afterFirst = metrics.bytesWritten.get();
    await expect(once(pipeline, record('2'))).resolves.toBe('unchanged');
    expect(metrics.bytesWritten.get()).toBe(afterFirst);
  });

  it('throws a retryable error instead of dead-lettering it', async () => {
    const { pipeline, sink, dlq } = setup();
    const outage = new S3UnavailableError('down');
    sink.before = () => {
      throw outage;
    };
    await expect(once(pipeline, record('1'))).rejects.toBe(outage);
    expect(dlq.sent).toEqual([]);
  });
});

describe('Pipeline.processBatch commit watermark', () => {
  it.each([
    ['in order', [0, 1, 2], ['10', '11', '15']],
    ['last first', [2, 1, 0], ['15']],
    ['middle first', [1, 0, 2], ['11', '15']],
    ['first, last, middle', [0, 2, 1], ['10', '15']],
  ])('commits only over contiguous finished records when they finish %s', async (_name, order, expected) => {
    const { pipeline, sink, control } = setup();
    const offsets = ['10', '11', '15'];
    const gates = new Map(offsets.map((o) => [o, deferred()]));
    sink.before = (object) => gates.get(object.lineage.offset)?.promise;
    control.onCheckpoint = (offset) => {
      // Everything at or before a checkpointed offset must have landed already.
      for (const o of offsets.filter((x) => BigInt(x) <= BigInt(offset))) expect(sink.finished, `checkpoint ${offset} before ${o} landed`).toContain(o);
    };
    const batch = pipeline.processBatch(
      offsets.map((o, i) => record(o, NOW - 10 + i)),
      control,
    );
    await until(() => sink.writes.length === 3, 'all three writes started');
    for (const index of order) {
      gates.get(offsets[index] ?? '')?.resolve();
      await flush();
    }
    await batch;
    expect(control.checkpoints).toEqual(expected);
  });

  it('does not commit anything while the first record is still in flight', async () => {
    const { pipeline, sink, control } = setup();
    const first = deferred();
    sink.before = (object) => (object.lineage.offset === '0' ? first.promise : undefined);
    const batch = pipeline.processBatch([record('0', NOW - 2), record('1', NOW - 1), record('2', NOW)], control);
    await until(() => sink.finished.length === 2, 'the later two records landed');
    await flush();
    expect(control.checkpoints).toEqual([]);
    first.resolve();
    await batch;
    expect(control.checkpoints).toEqual(['2']);
  });

  it('commits once at the end of the batch when the commit interval has not elapsed', async () => {
    const { pipeline, control } = setup({ commitIntervalMs: 1_000_000_000 });
    await pipeline.processBatch([record('5', NOW - 2), record('6', NOW - 1), record('7', NOW)], control);
    expect(control.checkpoints).toEqual(['7']);
  });

  it('commits nothing for an empty batch', async () => {
    const { pipeline, control } = setup();
    await pipeline.processBatch([], control);
    expect(control.checkpoints).toEqual([]);
  });
});

describe('Pipeline stalls on a retryable failure', () => {
  it('ends the batch at the failure with a backoff, commits the prefix, and is not stalled once the record lands on the re-fetch', async () => {
    const { pipeline, sink, dlq, control, metrics } = setup({ inflightPerPartition: 1 });
    sink.before = (object, attempt) => {
      if (object.lineage.offset === '6' && attempt < 2) throw new S3UnavailableError('PutObject failed: SlowDown (HTTP 503)');
    };
    const batch = [record('5', NOW - 2), record('6', NOW - 1), record('7', NOW)];
    await expect(pipeline.processBatch(batch, control)).resolves.toEqual({ retryAfterMs: 50 });
    expect(control.checkpoints).toEqual(['5']);
    expect(sink.writes.map((w) => w.lineage.offset)).toEqual(['5', '6']);
    expect(pipeline.stalled).toBe(1);
    expect(metrics.stalled.get()).toBe(1);
    expect(metrics.retries.get({ code: 'S3_UNAVAILABLE' })).toBe(1);

    // kafkajs fetches again from the first unfinished offset; the backoff doubles.
    await expect(pipeline.processBatch(batch.slice(1), control)).resolves.toEqual({ retryAfterMs: 100 });
    expect(pipeline.stalled).toBe(1);
    await expect(pipeline.processBatch(batch.slice(1), control)).resolves.toEqual({});
    expect(pipeline.stalled).toBe(0);
    expect(metrics.stalled.get()).toBe(0);
    expect(dlq.calls).toBe(0);
    expect(sink.finished).toEqual(['5', '6', '7']);
    expect(control.checkpoints).toEqual(['5', '6', '7']);

    // A later stall starts again from the first backoff.
    sink.before = () => {
      throw new S3UnavailableError('down');
    };
    await expect(pipeline.processBatch([record('8', NOW - 5)], control)).resolves.toEqual({ retryAfterMs: 50 });
  });

  it.each([
    ['the registry is unavailable', 'decoder', () => new RegistryUnavailableError('registry down')],
    ['S3 rejects the request (403)', 'sink', () => new S3RejectedError('AccessDenied (HTTP 403)')],
    ['S3 is unavailable', 'sink', () => new S3UnavailableError('SlowDown (HTTP 503)')],
    ['the DLQ cannot be written', 'dlq', () => new KafkaUnavailableError('could not produce to dead-letter topic')],
  ] as const)('stalls, never dead-letters the good record, when %s', async (_name, where, makeError) => {
    const { pipeline, decoder, sink, dlq, control, metrics } = setup();
    let failures = 0;
    const fail = () => {
      if (failures < 1) {
        failures++;
        throw makeError();
      }
    };
    if (where === 'decoder') decoder.before = fail;
    else if (where === 'sink') sink.before = fail;
    else dlq.before = fail;
    const r = where === 'dlq' ? record('9', NOW, { links: [{ link_id: -1, segment_id: null }] }) : record('9');
    await expect(pipeline.processBatch([r], control)).resolves.toEqual({ retryAfterMs: 50 });
    expect(control.checkpoints).toEqual([]);
    expect(dlq.sent).toEqual([]);
    expect(metrics.retries.get({ code: makeError().code })).toBe(1);
    await expect(pipeline.processBatch([r], control)).resolves.toEqual({});
    expect(control.checkpoints).toEqual(['9']);
    expect(metrics.records.get({ outcome: where === 'dlq' ? 'dead_lettered' : 'created' })).toBe(1);
    expect(dlq.sent).toHaveLength(where === 'dlq' ? 1 : 0);
  });

  it.each([
    ['doubles from retryInitialMs up to retryMaxMs, times the jitter', { retryInitialMs: 100, retryMaxMs: 300 }, () => 0.5, [50, 100, 150, 150]],
    ['never waits less than 1 ms', { retryInitialMs: 100, retryMaxMs: 300 }, () => 0, [1, 1, 1, 1]],
    ['uses the whole cap with jitter 1', { retryInitialMs: 10, retryMaxMs: 1000 }, () => 1, [10, 20, 40, 80]],
  ])('backoff %s', async (_name, overrides, random, expected) => {
    const { pipeline, sink, control } = setup(overrides, random);
    sink.before = () => {
      throw new S3UnavailableError('down');
    };
    const delays: (number | undefined)[] = [];
    for (let i = 0; i < 4; i++) delays.push((await pipeline.processBatch([record('1')], control)).retryAfterMs);
    expect(delays).toEqual(expected);
  });

  it('does not write or dead-letter again the records past the stall that finished before the batch ended', async () => {
    const { pipeline, sink, dlq, control, metrics } = setup();
    const gate = deferred();
    sink.before = async (object, attempt) => {
      if (object.lineage.offset === '1' && attempt === 0) {
        await gate.promise;
        throw new S3UnavailableError('down');
      }
    };
    const bad = record('3', NOW - 7, { links: [{ link_id: 0, segment_id: null }] });
    const batch = [record('1', NOW - 9), record('2', NOW - 8), bad, record('4', NOW - 6)];
    const first = pipeline.processBatch(batch, control);
    await until(() => sink.finished.length === 2 && dlq.sent.length === 1, 'the records past offset 1 finished');
    gate.resolve();
    await expect(first).resolves.toEqual({ retryAfterMs: 50 });
    expect(control.checkpoints).toEqual([]);
    await expect(pipeline.processBatch(batch, control)).resolves.toEqual({});
    expect(sink.writes.map((w) => w.lineage.offset)).toEqual(['1', '2', '4', '1']);
    expect(dlq.sent.map((l) => l.record.offset)).toEqual(['3']);
    expect(metrics.records.total()).toBe(4);
    expect(control.checkpoints.at(-1)).toBe('4');
  });

  it('stalls one partition without touching another', async () => {
    const { pipeline, sink, control } = setup();
    sink.before = (object) => {
      if (object.lineage.partition === 0) throw new S3RejectedError('AccessDenied (HTTP 403)');
    };
    await expect(pipeline.processBatch([record('1', NOW - 1, { partition: 0 })], control)).resolves.toEqual({ retryAfterMs: 50 });
    await expect(pipeline.processBatch([record('1', NOW, { partition: 1 })], new FakeControl())).resolves.toEqual({});
    expect(sink.finished).toEqual(['1']);
    expect(pipeline.stalled).toBe(1);
  });
});

describe('Pipeline dead-lettering', () => {
  it.each([
    [
      'a DecodeError from the decoder',
      (s: ReturnType<typeof setup>) => {
        s.decoder.before = () => {
          throw new DecodeError('WIRE_FORMAT_INVALID', 'wrong magic byte 1');
        };
      },
      record('3'),
      'WIRE_FORMAT_INVALID',
      undefined,
      0,
    ],
    [
      'a DecodeError that knows the writer schema id',
      (s: ReturnType<typeof setup>) => {
        s.decoder.before = () => {
          throw new DecodeError('AVRO_DECODE_FAILED', 'Avro body does not match writer schema 42', 42);
        };
      },
      record('3'),
      'AVRO_DECODE_FAILED',
      42,
      0,
    ],
    ['a null value (tombstone)', () => undefined, { ...record('3'), value: null }, 'PAYLOAD_NULL', undefined, 0],
    ['a ValidationError', () => undefined, record('3', NOW, { links: [{ link_id: 0, segment_id: null }] }), 'VALIDATION_FAILED', SCHEMA_ID, 0],
    ['a last_modified too far in the future', () => undefined, record('3', NOW + 86_401), 'VALIDATION_FAILED', SCHEMA_ID, 0],
    [
      'a ConflictError from the sink',
      (s: ReturnType<typeof setup>) => {
        const other = objectBody({ last_modified: NOW, tow_and_go: [] });
        s.sink.objects.set(`tow-and-go/${NOW}.json`, {
          key: `tow-and-go/${NOW}.json`,
          body: other,
          sha256: contentHash(other),
          snapshot: { lastModified: 1_700_000_000, links: 1 },
          lineage: { topic: 't', partition: 0, offset: '0', schemaId: 1 },
        });
      },
      record('3'),
      'OBJECT_CONFLICT',
      SCHEMA_ID,
      1,
    ],
  ] as const)('routes %s to the DLQ with its code and commits past it', async (_name, arrange, r, code, schemaId, sinkWrites) => {
    const s = setup();
    arrange(s);
    await s.pipeline.processBatch([r], s.control);
    expect(s.dlq.sent).toHaveLength(1);
    const letter = s.dlq.sent[0];
    expect(letter?.record).toBe(r);
    expect(letter?.error.code).toBe(code);
    expect(letter?.error.retryable).toBe(false);
    expect(letter?.schemaId).toBe(schemaId);
    expect(s.sink.writes).toHaveLength(sinkWrites);
    expect(s.metrics.records.get({ outcome: 'dead_lettered' })).toBe(1);
    expect(s.metrics.deadLetters.get({ code })).toBe(1);
    expect(s.control.checkpoints).toEqual(['3']);
  });
});

describe('Pipeline ordering by key', () => {
  it('processes records with the same key in order, so the first snapshot wins', async () => {
    const { pipeline, sink, dlq, control } = setup();
    const firstWrite = deferred();
    sink.before = (object) => (object.lineage.offset === '0' ? firstWrite.promise : undefined);
    const first = record('0', NOW, { links: [{ link_id: 1, segment_id: null }] });
    const second = record('1', NOW, { links: [{ link_id: 2, segment_id: null }] });
    const batch = pipeline.processBatch([first, second], control);

    await until(() => sink.writes.length === 1, 'the first write started');
    await flush();
    expect(sink.writes).toHaveLength(1);

    firstWrite.resolve();
    await batch;
    expect(sink.writes.map((w) => w.lineage.offset)).toEqual(['0', '1']);
    expect(sink.objects.get(`tow-and-go/${NOW}.json`)?.lineage.offset).toBe('0');
    expect(dlq.sent.map((l) => [l.record.offset, l.error.code])).toEqual([['1', 'OBJECT_CONFLICT']]);
    expect(control.checkpoints.at(-1)).toBe('1');
  });

  it('runs records with different keys concurrently', async () => {
    const { pipeline, sink, control } = setup();
    const firstWrite = deferred();
    sink.before = (object) => (object.lineage.offset === '0' ? firstWrite.promise : undefined);
    const batch = pipeline.processBatch([record('0', NOW - 1), record('1', NOW)], control);
    await until(() => sink.finished.includes('1'), 'the second record landed while the first is pending');
    expect(sink.finished).toEqual(['1']);
    firstWrite.resolve();
    await batch;
    expect(control.checkpoints.at(-1)).toBe('1');
  });

  it('orders unkeyed records by their decoded last_modified: the first wins even when it decodes last', async () => {
    const { pipeline, decoder, sink, dlq, control } = setup();
    const slowDecode = deferred();
    decoder.before = (text) => (text.includes('"link_id":1,') ? slowDecode.promise : undefined);
    const first = record('0', NOW, { key: null, links: [{ link_id: 1, segment_id: null }] });
    const second = record('1', NOW, { key: null, links: [{ link_id: 2, segment_id: null }] });
    const batch = pipeline.processBatch([first, second], control);
    await flush();
    // The second decoded first, but must not write before the first has decided its key.
    expect(sink.writes).toEqual([]);
    slowDecode.resolve();
    await batch;
    expect(sink.objects.get(`tow-and-go/${NOW}.json`)?.lineage.offset).toBe('0');
    expect(dlq.sent.map((l) => [l.record.offset, l.error.code])).toEqual([['1', 'OBJECT_CONFLICT']]);
  });

  it('runs unkeyed records for different last_modified values concurrently', async () => {
    const { pipeline, sink, control } = setup();
    const firstWrite = deferred();
    sink.before = (object) => (object.lineage.offset === '0' ? firstWrite.promise : undefined);
    const batch = pipeline.processBatch([record('0', NOW - 1, { key: null }), record('1', NOW, { key: null })], control);
    await until(() => sink.finished.includes('1'), 'the second record landed while the first is pending');
    firstWrite.resolve();
    await batch;
    expect(control.checkpoints.at(-1)).toBe('1');
  });

  it('lets a record whose predecessor for the same key was dead-lettered write at once', async () => {
    const { pipeline, decoder, sink, dlq, control } = setup();
    decoder.before = (text) => {
      if (text.includes('"link_id":9')) throw new DecodeError('AVRO_DECODE_FAILED', 'bad body');
    };
    await pipeline.processBatch([record('0', NOW, { links: [{ link_id: 9, segment_id: null }] }), record('1', NOW)], control);
    expect(dlq.sent.map((l) => l.record.offset)).toEqual(['0']);
    expect(sink.objects.get(`tow-and-go/${NOW}.json`)?.lineage.offset).toBe('1');
    expect(control.checkpoints.at(-1)).toBe('1');
  });

  it('does not let a later same-key record write after an earlier one stalled', async () => {
    const { pipeline, sink, control } = setup();
    sink.before = (object) => {
      if (object.lineage.offset === '0') throw new S3UnavailableError('down');
    };
    const first = record('0', NOW, { links: [{ link_id: 1, segment_id: null }] });
    const second = record('1', NOW, { links: [{ link_id: 2, segment_id: null }] });
    await expect(pipeline.processBatch([first, second], control)).resolves.toEqual({ retryAfterMs: 50 });
    // The re-fetch starts again at offset 0; if offset 1 had written the key, the first snapshot
    // would lose to the second.
    expect(sink.writes.map((w) => w.lineage.offset)).toEqual(['0']);
    expect(sink.objects.size).toBe(0);
    expect(control.checkpoints).toEqual([]);
  });

  it('lets no later record write after an earlier one stalled before its key was known', async () => {
    const { pipeline, decoder, sink, control } = setup();
    const failing = deferred();
    decoder.before = async (text) => {
      if (text.includes('"link_id":1,')) {
        await failing.promise;
        throw new RegistryUnavailableError('registry down');
      }
    };
    const batch = pipeline.processBatch(
      [record('0', NOW, { key: null, links: [{ link_id: 1, segment_id: null }] }), record('1', NOW - 1, { key: null })],
      control,
    );
    await flush();
    expect(sink.writes).toEqual([]);
    failing.resolve();
    await expect(batch).resolves.toEqual({ retryAfterMs: 50 });
    expect(sink.writes).toEqual([]);
  });
});

describe('Pipeline bugs are not swallowed', () => {
  it.each([
    ['the sink', 'sink'],
    ['the decoder', 'decoder'],
  ] as const)('rethrows a TypeError from %s and checkpoints nothing past it', async (_name, where) => {
    const { pipeline, decoder, sink, dlq, control } = setup();
    const bug = new TypeError("cannot read properties of undefined (reading 'x')");
    if (where === 'sink') {
      sink.before = (object) => {
        if (object.lineage.offset === '1') throw bug;
      };
    } else {
      decoder.before = (text) => {
        if (JSON.parse(text).last_modified === NOW - 1) throw bug;
      };
    }
    const records = [record('0', NOW - 2), record('1', NOW - 1), record('2', NOW)];
    await expect(pipeline.processBatch(records, control)).rejects.toBe(bug);
    expect(dlq.calls).toBe(0);
    expect(control.checkpoints).toContain('0');
    expect(control.checkpoints.every((o) => o === '0')).toBe(true);
  });

  it('starts no further records after a bug', async () => {
    const { pipeline, sink, control } = setup({ inflightPerPartition: 1 });
    const bug = new TypeError('bug');
    sink.before = (object) => {
      if (object.lineage.offset === '1') throw bug;
    };
    await expect(pipeline.processBatch([record('0', NOW - 2), record('1', NOW - 1), record('2', NOW)], control)).rejects.toBe(bug);
    expect(sink.writes.map((w) => w.lineage.offset)).toEqual(['0', '1']);
    expect(control.checkpoints).toEqual(['0']);
  });

  it('fails at once on a bug even while a sibling record is failing retryably', async () => {
    const { pipeline, decoder, sink, control } = setup();
    const bug = new RangeError('bug');
    decoder.before = (text) => {
      if (JSON.parse(text).last_modified === NOW) throw bug;
    };
    sink.before = () => {
      throw new S3UnavailableError('down');
    };
    await expect(pipeline.processBatch([record('0', NOW - 1), record('1', NOW)], control)).rejects.toBe(bug);
    expect(sink.writes).toHaveLength(1);
  });
});

describe('Pipeline when the batch stops being active', () => {
  it('commits what landed and starts no record after the batch went inactive', async () => {
    const { pipeline, sink, control } = setup({ inflightPerPartition: 1 });
    sink.before = (object) => {
      if (object.lineage.offset === '1') control.active = false;
    };
    await pipeline.processBatch([record('0', NOW - 3), record('1', NOW - 2), record('2', NOW - 1), record('3', NOW)], control);
    expect(sink.writes.map((w) => w.lineage.offset)).toEqual(['0', '1']);
    // Offset 1 landed after the revocation: it is the next owner's to commit (it will find it unchanged).
    expect(control.checkpoints).toEqual(['0']);
  });

  it('does not commit records that finish after the batch went inactive', async () => {
    const { pipeline, sink, control } = setup();
    const gate = deferred();
    sink.before = (object) => (object.lineage.offset === '0' ? gate.promise : undefined);
    const batch = pipeline.processBatch([record('0', NOW - 1), record('1', NOW)], control);
    await until(() => sink.writes.length === 2, 'both writes started');
    control.active = false;
    gate.resolve();
    await batch;
    expect(sink.finished).toEqual(['1', '0']);
    expect(control.checkpoints).toEqual([]);
  });

  it('on graceful shutdown (inactive but still committable) commits what landed, including records that finish late', async () => {
    const { pipeline, sink, control } = setup();
    const gate = deferred();
    sink.before = (object) => (object.lineage.offset === '0' ? gate.promise : undefined);
    const batch = pipeline.processBatch([record('0', NOW - 2), record('1', NOW - 1), record('2', NOW)], control);
    await until(() => sink.writes.length === 3, 'all writes started');
    control.active = false;
    control.committable = true;
    gate.resolve();
    await batch;
    expect(sink.finished).toEqual(['1', '2', '0']);
    expect(control.checkpoints.at(-1)).toBe('2');
  });

  it('starts no record of a batch whose control is already inactive', async () => {
    const { pipeline, sink, control } = setup();
    control.active = false;
    await pipeline.processBatch([record('0'), record('1', NOW - 1)], control);
    expect(sink.writes).toEqual([]);
    expect(control.checkpoints).toEqual([]);
  });
});

describe('Pipeline in-flight bounds', () => {
  /** Each write waits a pseudo-random number of turns, so completions interleave. */
  function jitteredSink(sink: FakeSink, seen: number[], metrics: Metrics): void {
    let state = 12345;
    sink.before = async () => {
      seen.push(metrics.inflight.get());
      state = (state * 1103515245 + 12345) % 2147483648;
      for (let i = 0; i < 1 + (state % 4); i++) await new Promise<void>((r) => setImmediate(r));
    };
  }

  it.each([1, 3, 8])('never has more than inflightPerPartition=%i records in flight', async (limit) => {
    const { pipeline, sink, control, metrics } = setup({ inflightPerPartition: limit });
    const seen: number[] = [];
    jitteredSink(sink, seen, metrics);
    const records = Array.from({ length: 40 }, (_, i) => record(String(100 + i), NOW - 100 + i));
    await pipeline.processBatch(records, control);
    expect(Math.max(...seen)).toBeLessThanOrEqual(limit);
    expect(sink.maxActive).toBeLessThanOrEqual(limit);
    expect(sink.maxActive).toBe(limit);
    expect(sink.finished).toHaveLength(40);
    expect(metrics.inflight.get()).toBe(0);
    expect(control.checkpoints.at(-1)).toBe('139');
    const asNumbers = control.checkpoints.map(Number);
    expect(asNumbers).toEqual([...asNumbers].sort((a, b) => a - b));
    expect(new Set(asNumbers).size).toBe(asNumbers.length);
  });

  it('waits for bytes in flight to drop below maxInflightBytes', async () => {
    const records = Array.from({ length: 10 }, (_, i) => record(String(i), NOW - 10 + i));
    const size = records[0]?.value?.length ?? 0;
    // A record is charged EXPANSION times its size while it decodes, then its body and value: with
    // room for one decode, the next record is admitted only once the previous one is done.
    const { pipeline, sink, control, metrics } = setup({ inflightPerPartition: 8, maxInflightBytes: size * EXPANSION });
    jitteredSink(sink, [], metrics);
    await pipeline.processBatch(records, control);
    expect(sink.maxActive).toBe(1);
    expect(sink.finished).toHaveLength(10);
  });
});

describe('Pipeline replay options', () => {
  it('skips records that accept rejects without decoding them, and still commits past them', async () => {
    const { pipeline, decoder, sink, dlq, control, metrics } = setup({ accept: (r) => r.offset !== '1' });
    await pipeline.processBatch([record('0', NOW - 2), record('1', NOW - 1), record('2', NOW)], control);
    expect(decoder.calls).toHaveLength(2);
    expect(sink.writes.map((w) => w.lineage.offset)).toEqual(['0', '2']);
    expect(dlq.calls).toBe(0);
    expect(metrics.records.get({ outcome: 'skipped' })).toBe(1);
    expect(control.checkpoints.at(-1)).toBe('2');
  });

  it.each([
    ['an absent key', undefined, 'would_create'],
    ['the same snapshot', [{ link_id: 1, segment_id: null }], 'unchanged'],
    ['a different snapshot', [{ link_id: 2, segment_id: null }], 'would_conflict'],
  ] as const)('in dry-run asks the sink for a plan and writes nothing: %s gives %s', async (_name, storedLinks, expected) => {
    const { pipeline, sink, metrics } = setup({ dryRun: true });
    if (storedLinks !== undefined) {
      const body = objectBody({ last_modified: NOW, tow_and_go: [...storedLinks] });
      const key = `tow-and-go/${NOW}.json`;
      sink.objects.set(key, {
        key,
        body,
        sha256: contentHash(body),
        snapshot: { lastModified: 1_700_000_000, links: 1 },
        lineage: { topic: 't', partition: 0, offset: '0', schemaId: 1 },
      });
    }
    await expect(once(pipeline, record('5'))).resolves.toBe(expected);
    expect(sink.plans).toHaveLength(1);
    expect(sink.writes).toEqual([]);
    expect(metrics.bytesWritten.get()).toBe(0);
  });

  it('in dry-run reports a permanent failure as dead_lettered without sending it to the DLQ', async () => {
    const { pipeline, dlq, metrics } = setup({ dryRun: true });
    await expect(once(pipeline, record('5', NOW, { links: [{ link_id: 0, segment_id: null }] }))).resolves.toBe('dead_lettered');
    expect(dlq.calls).toBe(0);
    expect(metrics.deadLetters.total()).toBe(0);
  });
});
