import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ValidationError } from '../../src/errors.ts';
import { contentHash, encodeBody, objectBody, objectKey, type Snapshot, type SnapshotLimits, summarizeIssues, validateSnapshot } from '../../src/snapshot.ts';
import { prng } from '../support/prng.ts';
import { thrownBy } from '../support/thrown.ts';

const NOW = 1_700_000_000;
const LIMITS: SnapshotLimits = { minLastModified: 946_684_800, maxFutureSkewSeconds: 86_400, maxLinks: 3 };

function validationError(value: unknown): ValidationError {
  return thrownBy(ValidationError, () => validateSnapshot(value, LIMITS, NOW));
}

describe('validateSnapshot', () => {
  it('accepts a valid snapshot with null and numeric segment ids', () => {
    const value = {
      last_modified: NOW,
      tow_and_go: [
        { link_id: 1, segment_id: 10 },
        { link_id: 2, segment_id: null },
      ],
    };
    expect(validateSnapshot(value, LIMITS, NOW)).toEqual(value);
  });

  it('accepts an empty link list', () => {
    expect(validateSnapshot({ last_modified: NOW, tow_and_go: [] }, LIMITS, NOW)).toEqual({ last_modified: NOW, tow_and_go: [] });
  });

  it('drops unknown fields at every level so the body keeps the seed shape', () => {
    const result = validateSnapshot({ last_modified: NOW, extra: 'x', tow_and_go: [{ link_id: 1, segment_id: null, speed: 3 }] }, LIMITS, NOW);
    expect(result).toStrictEqual({ last_modified: NOW, tow_and_go: [{ link_id: 1, segment_id: null }] });
  });

  it.each([
    ['last_modified at the lower bound', LIMITS.minLastModified],
    ['last_modified exactly at the future-skew bound', NOW + LIMITS.maxFutureSkewSeconds],
  ])('accepts %s', (_name, lastModified) => {
    expect(validateSnapshot({ last_modified: lastModified, tow_and_go: [] }, LIMITS, NOW).last_modified).toBe(lastModified);
  });

  it.each([
    ['last_modified below the minimum', { last_modified: LIMITS.minLastModified - 1, tow_and_go: [] }, 'last_modified: must be at or after 946684800'],
    [
      'last_modified past the future-skew bound',
      { last_modified: NOW + LIMITS.maxFutureSkewSeconds + 1, tow_and_go: [] },
      'last_modified: must be at most 86400s',
    ],
    ['a fractional last_modified', { last_modified: NOW + 0.5, tow_and_go: [] }, 'last_modified:'],
    ['a string last_modified', { last_modified: String(NOW), tow_and_go: [] }, 'last_modified:'],
    ['a missing tow_and_go', { last_modified: NOW }, 'tow_and_go:'],
    [
      'a zero link_id',
      {
        last_modified: NOW,
        tow_and_go: [
          { link_id: 1, segment_id: 1 },
          { link_id: 0, segment_id: 1 },
        ],
      },
      'tow_and_go[1].link_id:',
    ],
    ['a negative segment_id', { last_modified: NOW, tow_and_go: [{ link_id: 1, segment_id: -4 }] }, 'tow_and_go[0].segment_id:'],
    ['a missing segment_id', { last_modified: NOW, tow_and_go: [{ link_id: 1 }] }, 'tow_and_go[0].segment_id:'],
    [
      'more links than maxLinks',
      { last_modified: NOW, tow_and_go: [1, 2, 3, 4].map((id) => ({ link_id: id, segment_id: null })) },
      'tow_and_go: must have at most 3 links',
    ],
    ['a non-object value', [1, 2], '(root):'],
    ['null', null, '(root):'],
  ])('rejects %s with a ValidationError naming the field', (_name, value, expected) => {
    const error = validationError(value);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`invalid snapshot: ${expected}`);
  });

  it('carries the zod issues as the cause', () => {
    const error = validationError({ last_modified: NOW, tow_and_go: [{ link_id: -1, segment_id: null }] });
    expect(Array.isArray(error.cause)).toBe(true);
    expect(error.cause).toEqual([expect.objectContaining({ path: ['tow_and_go', 0, 'link_id'] })]);
  });

  it('never puts payload values in the message', () => {
    const error = validationError({ last_modified: 123_456_789, tow_and_go: [{ link_id: -987_654_321, segment_id: null }] });
    expect(error.message).not.toContain('123456789');
    expect(error.message).not.toContain('987654321');
  });

  it('counts the further problems after the first', () => {
    const error = validationError({ last_modified: 1, tow_and_go: [{ link_id: 0, segment_id: 0 }] });
    expect(error.message).toMatch(/^invalid snapshot: last_modified: .* \(\+2 more\)$/);
  });
});

describe('summarizeIssues', () => {
  it('says "unknown problem" when there are no issues', () => {
    expect(summarizeIssues([])).toBe('unknown problem');
  });

  it('formats the path of the first issue with indexes in brackets', () => {
    const issues: z.core.$ZodIssue[] = [
      { code: 'custom', path: ['tow_and_go', 3, 'link_id'], message: 'Too small', input: 0 },
      { code: 'custom', path: ['last_modified'], message: 'Bad', input: 0 },
    ];
    expect(summarizeIssues(issues)).toBe('tow_and_go[3].link_id: Too small (+1 more)');
  });
});

describe('objectKey', () => {
  it.each([
    ['tow-and-go/', 1_700_000_000, 'tow-and-go/1700000000.json'],
    ['', 946_684_800, '946684800.json'],
    ['a/b/', 1, 'a/b/1.json'],
  ])('with prefix %j and last_modified %i is %s', (prefix, lastModified, key) => {
    expect(objectKey(prefix, { last_modified: lastModified })).toBe(key);
  });
});

describe('objectBody', () => {
  it('writes the seed shape with fields in the seed order and no whitespace', () => {
    const body = objectBody({
      last_modified: 5,
      tow_and_go: [
        { link_id: 1, segment_id: null },
        { link_id: 2, segment_id: 9 },
      ],
    });
    expect(body.toString('utf8')).toBe('{"last_modified":5,"tow_and_go":[{"link_id":1,"segment_id":null},{"link_id":2,"segment_id":9}]}');
  });

  it('writes an empty link list as []', () => {
    expect(objectBody({ last_modified: 5, tow_and_go: [] }).toString('utf8')).toBe('{"last_modified":5,"tow_and_go":[]}');
  });

  it('gives the same bytes for the same snapshot regardless of input key order', () => {
    const a = validateSnapshot({ last_modified: NOW, tow_and_go: [{ link_id: 7, segment_id: 8 }] }, LIMITS, NOW);
    const b = validateSnapshot({ tow_and_go: [{ segment_id: 8, link_id: 7 }], last_modified: NOW }, LIMITS, NOW);
    expect(objectBody(a).equals(objectBody(b))).toBe(true);
  });

  it('is valid JSON that parses back to the snapshot', () => {
    const snapshot = { last_modified: NOW, tow_and_go: [{ link_id: 9_007_199_254_740_991, segment_id: null }] };
    expect(JSON.parse(objectBody(snapshot).toString('utf8'))).toEqual(snapshot);
  });
});

/**
 * The reference: objectBody as it was before it became one JSON.stringify (issue 9), one template
 * string per link. Stored objects' content-sha256 metadata was computed from these bytes, so the
 * new body must match them byte for byte, or every re-delivery of an old snapshot becomes a conflict.
 */
function templateBody(snapshot: Snapshot): Buffer {
  const links = snapshot.tow_and_go.map((l) => `{"link_id":${l.link_id},"segment_id":${l.segment_id === null ? 'null' : l.segment_id}}`);
  return Buffer.from(`{"last_modified":${snapshot.last_modified},"tow_and_go":[${links.join(',')}]}`, 'utf8');
}

/** Every valid snapshot, at any size: limits wide enough that validation never trims the corpus. */
const WIDE: SnapshotLimits = { minLastModified: 0, maxFutureSkewSeconds: Number.MAX_SAFE_INTEGER - NOW, maxLinks: 1_000_000 };
const MAX = Number.MAX_SAFE_INTEGER;

/** A positive safe integer whose digit count is uniform over 1..16, so small and huge ids are equally likely. */
function randomId(rand: () => number): number {
  const digits = 1 + Math.floor(rand() * 16);
  const value = Math.floor(rand() * 10 ** digits);
  return Math.min(MAX, Math.max(1, value));
}

function randomSnapshotInput(rand: () => number): Record<string, unknown> {
  const sizes = [0, 1, 2, 3, 10, 100, 1000];
  const n = rand() < 0.8 ? Math.floor(rand() * 20) : (sizes[Math.floor(rand() * sizes.length)] ?? 0);
  const links = Array.from({ length: n }, () => {
    const linkId = randomId(rand);
    const segmentId = rand() < 0.3 ? null : randomId(rand);
    // Key order and extra fields vary, as values decoded from newer writer schemas do.
    return rand() < 0.5 ? { link_id: linkId, segment_id: segmentId } : { speed: 3, segment_id: segmentId, link_id: linkId };
  });
  const lastModified = rand() < 0.5 ? NOW - Math.floor(rand() * NOW) : randomId(rand);
  return rand() < 0.5 ? { last_modified: lastModified, tow_and_go: links } : { tow_and_go: links, extra: 'x', last_modified: lastModified };
}

describe('objectBody is byte-identical to the per-link template version', () => {
  const SEED = 0x9_0b0d;

  it(`over 2,000 random valid snapshots (seed ${SEED})`, () => {
    const rand = prng(SEED);
    let links = 0;
    for (let i = 0; i < 2000; i++) {
      const snapshot = validateSnapshot(randomSnapshotInput(rand), WIDE, NOW);
      links += snapshot.tow_and_go.length;
      const body = objectBody(snapshot);
      const reference = templateBody(snapshot);
      if (!body.equals(reference)) expect.fail(`snapshot ${i} (seed ${SEED}): ${body.toString('utf8')} !== ${reference.toString('utf8')}`);
    }
    // The corpus is not trivially small: a generator that produced only empty snapshots would pass above.
    expect(links).toBeGreaterThan(20_000);
  });

  const edge: [string, Snapshot][] = [
    ['no links', { last_modified: NOW, tow_and_go: [] }],
    ['last_modified 0', { last_modified: 0, tow_and_go: [] }],
    ['last_modified -0 (a valid int with MIN_LAST_MODIFIED=0; both write 0)', { last_modified: -0, tow_and_go: [{ link_id: 1, segment_id: null }] }],
    ['only null segment ids', { last_modified: NOW, tow_and_go: [1, 2, 3].map((id) => ({ link_id: id, segment_id: null })) }],
    ['the largest safe integers everywhere', { last_modified: MAX, tow_and_go: [{ link_id: MAX, segment_id: MAX }] }],
    [
      'around the small-integer (Smi) and 32-bit boundaries',
      {
        last_modified: 2 ** 31,
        tow_and_go: [2 ** 30 - 1, 2 ** 30, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1].map((id) => ({ link_id: id, segment_id: id })),
      },
    ],
    [
      'powers of ten up to 10^15, and 2^53 - 2',
      { last_modified: 10 ** 15, tow_and_go: [1, 10, 1e6, 1e9, 1e12, 1e15, MAX - 1].map((id) => ({ link_id: id, segment_id: id === 1 ? null : id })) },
    ],
  ];

  it.each(edge)('for %s', (_name, snapshot) => {
    const valid = validateSnapshot(snapshot, WIDE, NOW);
    expect(objectBody(valid).toString('utf8')).toBe(templateBody(valid).toString('utf8'));
    expect(objectBody(valid).equals(templateBody(valid))).toBe(true);
  });

  it('for a maximum-size snapshot (200,000 links)', () => {
    const rand = prng(SEED + 1);
    const snapshot = validateSnapshot(
      {
        last_modified: NOW,
        tow_and_go: Array.from({ length: 200_000 }, (_, i) => ({ link_id: randomId(rand), segment_id: i % 3 === 0 ? null : randomId(rand) })),
      },
      WIDE,
      NOW,
    );
    expect(contentHash(objectBody(snapshot))).toBe(contentHash(templateBody(snapshot)));
  });

  it('keeps only the two link fields, in the seed order, whatever the input object holds', () => {
    const odd = { last_modified: 5, tow_and_go: [{ segment_id: 2, speed: 9, link_id: 1 }] } as unknown as Snapshot;
    expect(objectBody(odd).toString('utf8')).toBe('{"last_modified":5,"tow_and_go":[{"link_id":1,"segment_id":2}]}');
  });
});

describe('contentHash', () => {
  it('is the hex SHA-256 of the bytes', () => {
    expect(contentHash(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('differs for different bodies', () => {
    expect(contentHash(Buffer.from('{"a":1}'))).not.toBe(contentHash(Buffer.from('{"a":2}')));
  });
});

describe('encodeBody', () => {
  const body = Buffer.from('{"last_modified":1684216515,"tow_and_go":[]}');

  it('leaves the body as it is without compression', () => {
    expect(encodeBody(body, 'none')).toBe(body);
  });

  it('gzips deterministically, to bytes that gunzip to the same JSON', () => {
    const once = encodeBody(body, 'gzip');
    expect(once).toEqual(encodeBody(body, 'gzip'));
    expect(once.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gunzipSync(once)).toEqual(body);
  });
});

describe('validateSnapshot reuses its schema only within the same second', () => {
  it('moves the future bound when nowSeconds changes, with the same limits object', () => {
    const limits: SnapshotLimits = { minLastModified: 0, maxFutureSkewSeconds: 10, maxLinks: 5 };
    const snapshot = { last_modified: 1_000_011, tow_and_go: [] };
    expect(() => validateSnapshot(snapshot, limits, 1_000_000)).toThrow(ValidationError);
    expect(validateSnapshot(snapshot, limits, 1_000_001)).toEqual(snapshot);
    expect(() => validateSnapshot(snapshot, limits, 1_000_000)).toThrow(ValidationError);
  });
});
