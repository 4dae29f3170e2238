import { describe, expect, it } from 'vitest';
import {
  type Body,
  classify,
  type DeadLetterEntry,
  deadLetterSource,
  inTimeRange,
  type RecordFacts,
  type StoredObject,
  Tally,
  unaccountedLine,
  type Verdict,
} from '../../../src/archive/reconcile-classify.ts';
import { DLQ_HEADER } from '../../../src/dlq.ts';

const KEY = 'tow-and-go/1684216515.json';
const OURS = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

function stored(sha256: string | undefined, offset = '7', partition = '1', topic = 't'): StoredObject {
  return { sha256, lineage: { topic, partition, offset } };
}

function built(s: StoredObject | undefined, acceptance: Extract<Body, { kind: 'built' }>['acceptance'] = { kind: 'accepted' }): Body {
  return { kind: 'built', sha256: OURS, acceptance, copies: [{ destination: 'default', key: KEY, stored: s }] };
}

/** Two destinations: the pipeline's first, a second with its own prefix. */
function twoCopies(first: StoredObject | undefined, second: StoredObject | undefined): Body {
  const copies = [
    { destination: 'primary', key: KEY, stored: first },
    { destination: 'backup', key: `b/${KEY}`, stored: second },
  ];
  return { kind: 'built', sha256: OURS, acceptance: { kind: 'accepted' }, copies };
}

const UNDECODABLE: Body = { kind: 'undecodable', code: 'WIRE_FORMAT_INVALID', reason: 'wrong magic byte 110' };
const DEAD: DeadLetterEntry = { code: 'OBJECT_CONFLICT', errorClass: 'ConflictError', reason: 'conflict' };

function facts(body: Body | undefined, o: { deadLetter?: DeadLetterEntry; inTimeRange?: boolean } = {}): RecordFacts {
  return { topic: 't', partition: 1, offset: '7', inTimeRange: o.inTimeRange ?? true, deadLetter: o.deadLetter, body };
}

describe('reconcile classification', () => {
  it('written: the object has the hash and names this record as its source', () => {
    expect(classify(facts(built(stored(OURS))))).toEqual({ kind: 'written' });
  });

  it('duplicate: the object has the hash but came from another offset, partition or topic', () => {
    for (const s of [stored(OURS, '3'), stored(OURS, '7', '0'), stored(OURS, '7', '1', 'other')]) {
      expect(classify(facts(built(s)))).toEqual({ kind: 'duplicate', of: s.lineage });
    }
  });

  it('a matching object comes before the DLQ: the snapshot is in S3', () => {
    expect(classify(facts(built(stored(OURS)), { deadLetter: DEAD })).kind).toBe('written');
  });

  it('dead_lettered: named by a DLQ record, whatever the object or the decoding says', () => {
    for (const body of [built(stored(OTHER)), built(undefined), UNDECODABLE, built(undefined, { kind: 'before_min' })]) {
      expect(classify(facts(body, { deadLetter: DEAD }))).toEqual({ kind: 'dead_lettered', entry: DEAD });
    }
  });

  it('outside: a timestamp outside the time range comes first and needs no body', () => {
    expect(classify(facts(undefined, { inTimeRange: false }))).toEqual({ kind: 'outside', why: 'time_range' });
    expect(classify(facts(built(stored(OURS)), { inTimeRange: false, deadLetter: DEAD }))).toEqual({ kind: 'outside', why: 'time_range' });
  });

  it('outside: before MIN_LAST_MODIFIED and neither in S3 nor in the DLQ', () => {
    expect(classify(facts(built(undefined, { kind: 'before_min' })))).toEqual({ kind: 'outside', why: 'before_min_last_modified' });
    expect(classify(facts(built(stored(OTHER), { kind: 'before_min' })))).toEqual({ kind: 'outside', why: 'before_min_last_modified' });
    // Written under an older, lower MIN_LAST_MODIFIED: it is in S3, so it is written.
    expect(classify(facts(built(stored(OURS), { kind: 'before_min' }))).kind).toBe('written');
  });

  it('undecodable and not in the DLQ is unaccounted, not outside', () => {
    expect(classify(facts(UNDECODABLE))).toEqual({ kind: 'undecodable', key: undefined, code: 'WIRE_FORMAT_INVALID', reason: 'wrong magic byte 110' });
    const refused = { kind: 'refused', code: 'VALIDATION_FAILED', reason: 'tow_and_go: too many links' } as const;
    expect(classify(facts(built(undefined, refused)))).toEqual({ kind: 'undecodable', key: KEY, code: 'VALIDATION_FAILED', reason: refused.reason });
  });

  it('missing: no object at the key', () => {
    expect(classify(facts(built(undefined)))).toEqual({ kind: 'missing', key: KEY, destinations: ['default'] });
  });

  it('with several destinations, S3 accounts for a record only when every destination has it', () => {
    expect(classify(facts(twoCopies(stored(OURS), stored(OURS, '3'))))).toEqual({ kind: 'written' });
    expect(classify(facts(twoCopies(stored(OURS, '3'), stored(OURS))))).toEqual({ kind: 'duplicate', of: stored(OURS, '3').lineage });
    expect(classify(facts(twoCopies(stored(OURS), undefined)))).toEqual({ kind: 'missing', key: `b/${KEY}`, destinations: ['backup'] });
    expect(classify(facts(twoCopies(undefined, undefined)))).toEqual({ kind: 'missing', key: KEY, destinations: ['primary', 'backup'] });
    // A conflict anywhere outweighs a copy missing elsewhere: the repair must not be asked to write it.
    expect(classify(facts(twoCopies(undefined, stored(OTHER))))).toEqual({
      kind: 'conflict',
      key: `b/${KEY}`,
      destination: 'backup',
      stored: stored(OTHER),
      ours: OURS,
    });
    expect(classify(facts(twoCopies(stored(OURS), stored(OTHER)), { deadLetter: DEAD })).kind).toBe('dead_lettered');
  });

  it('conflict: another hash at the key, or none recorded', () => {
    for (const s of [stored(OTHER), stored(undefined)]) {
      expect(classify(facts(built(s)))).toEqual({ kind: 'conflict', key: KEY, destination: 'default', stored: s, ours: OURS });
    }
  });

  it('a record in range that was not examined is a bug, not a verdict', () => {
    expect(() => classify(facts(undefined))).toThrow(/not examined/);
  });

  it('one stderr line per unaccounted record names partition, offset, key and why', () => {
    const line = unaccountedLine(facts(undefined), { kind: 'conflict', key: KEY, destination: 'default', stored: stored(OTHER, '3'), ours: OURS });
    expect(JSON.parse(line)).toEqual({
      unaccounted: {
        topic: 't',
        partition: 1,
        offset: '7',
        key: KEY,
        why: 'conflict',
        detail: `the object in destination default holds another snapshot (content-sha256 ${OTHER}, written from t/1@3; this record's is ${OURS})`,
      },
    });
    const undecodable = JSON.parse(unaccountedLine(facts(undefined), { kind: 'undecodable', key: undefined, code: 'PAYLOAD_NULL', reason: 'null' }));
    expect(undecodable.unaccounted).toMatchObject({ key: null, why: 'undecodable', code: 'PAYLOAD_NULL' });
    expect(line).not.toContain('\n');
  });
});

describe('reconcile tally', () => {
  it('counts each verdict once, and a re-check after repair moves the record and counts it repaired', () => {
    const tally = new Tally();
    const verdicts: Verdict[] = [
      { kind: 'written' },
      { kind: 'duplicate', of: { topic: 't', partition: '0', offset: '1' } },
      { kind: 'dead_lettered', entry: DEAD },
      { kind: 'outside', why: 'time_range' },
      { kind: 'missing', key: KEY, destinations: ['default'] },
      { kind: 'missing', key: 'other', destinations: ['default'] },
      { kind: 'conflict', key: KEY, destination: 'default', stored: stored(OTHER), ours: OURS },
      { kind: 'undecodable', key: undefined, code: 'PAYLOAD_NULL', reason: 'null' },
    ];
    for (const v of verdicts) tally.add(v);
    expect(tally.counts).toEqual({
      records: 8,
      written: 1,
      duplicate: 1,
      dead_lettered: 1,
      outside: 1,
      unaccounted: { missing: 2, conflict: 1, undecodable: 1 },
      repaired: 0,
    });
    expect(tally.unaccounted).toBe(4);
    tally.replace({ kind: 'missing', key: KEY, destinations: ['default'] }, { kind: 'written' });
    // Lost a race during the repair: still unaccounted, now as a conflict, and not repaired.
    tally.replace(
      { kind: 'missing', key: 'other', destinations: ['default'] },
      { kind: 'conflict', key: 'other', destination: 'default', stored: stored(OTHER), ours: OURS },
    );
    expect(tally.counts).toMatchObject({ records: 8, written: 2, unaccounted: { missing: 0, conflict: 2, undecodable: 1 }, repaired: 1 });
    expect(tally.unaccounted).toBe(3);
  });
});

describe('DLQ headers and the time range', () => {
  const headers = {
    [DLQ_HEADER.topic]: 't',
    [DLQ_HEADER.partition]: '2',
    [DLQ_HEADER.offset]: '41',
    [DLQ_HEADER.code]: 'VALIDATION_FAILED',
    [DLQ_HEADER.errorClass]: 'ValidationError',
    [DLQ_HEADER.message]: 'invalid snapshot: last_modified: too small',
  };

  it('reads the source a DLQ record names, for the topic being reconciled only', () => {
    expect(deadLetterSource(headers, DLQ_HEADER, 't')).toEqual({
      partition: 2,
      offset: '41',
      entry: { code: 'VALIDATION_FAILED', errorClass: 'ValidationError', reason: 'invalid snapshot: last_modified: too small' },
    });
    expect(deadLetterSource(headers, DLQ_HEADER, 'other')).toBeUndefined();
  });

  it('ignores DLQ records without a usable source', () => {
    expect(deadLetterSource({ ...headers, [DLQ_HEADER.offset]: undefined }, DLQ_HEADER, 't')).toBeUndefined();
    expect(deadLetterSource({ ...headers, [DLQ_HEADER.partition]: 'x' }, DLQ_HEADER, 't')).toBeUndefined();
    expect(deadLetterSource({ ...headers, [DLQ_HEADER.offset]: '-1' }, DLQ_HEADER, 't')).toBeUndefined();
    expect(deadLetterSource({ [DLQ_HEADER.topic]: 't', [DLQ_HEADER.partition]: '0', [DLQ_HEADER.offset]: '1' }, DLQ_HEADER, 't')?.entry).toEqual({
      code: 'UNKNOWN',
      errorClass: 'UNKNOWN',
      reason: '',
    });
  });

  it('the time range includes its start and excludes its end, as replay does', () => {
    expect(inTimeRange('1000', 1000, 2000)).toBe(true);
    expect(inTimeRange('1999', 1000, 2000)).toBe(true);
    expect(inTimeRange('2000', 1000, 2000)).toBe(false);
    expect(inTimeRange('999', 1000, 2000)).toBe(false);
    expect(inTimeRange('5', Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)).toBe(true);
  });
});
