/**
 * The transcoder is a compiled form of the zod contract for one writer schema. These tests hold
 * it to that: whenever it says yes, the general path (avro-guard + avsc + zod + objectBody) says
 * yes with the same bytes; and it says yes to the plainly valid snapshots that make up real traffic
 * (otherwise it would be correct but useless). Inputs are random and edge-case Avro, encoded here
 * with an independent BigInt encoder so that out-of-range values and block forms avsc never writes
 * (negative block counts, several blocks) are covered too.
 */
import { describe, expect, it } from 'vitest';
import { assertWellFormedAvro } from '../../src/avro-guard.ts';
import { type Framed, loadSnapshotSchema } from '../../src/codec.ts';
import { DecodeError, ValidationError } from '../../src/errors.ts';
import { objectBody, type SnapshotLimits, validateSnapshot } from '../../src/snapshot.ts';
import { snapshotBody, transcodeSnapshot } from '../../src/snapshot-transcoder.ts';
import { prng } from '../support/prng.ts';
import { avroLong } from '../support/wire.ts';

const NOW = 1_700_000_000;
const LIMITS: SnapshotLimits = { minLastModified: 946_684_800, maxFutureSkewSeconds: 86_400, maxLinks: 50 };
const { type } = loadSnapshotSchema();

/** Avro long, as plain numbers (an independent BigInt encoder: see test/support/wire.ts). */
function long(v: bigint): number[] {
  return [...avroLong(v)];
}

type Link = { link: bigint; segment: bigint | null; branch?: number };
interface Shape {
  lastModified: bigint;
  /** Links split into blocks; a block written with a negative count carries its byte size. */
  blocks: { links: Link[]; negative: boolean }[];
  trailing?: number[];
}

function encode(s: Shape): Buffer {
  const out = [...long(s.lastModified)];
  for (const block of s.blocks) {
    const items = block.links.flatMap((l) => [
      ...long(l.link),
      ...long(BigInt(l.branch ?? (l.segment === null ? 0 : 1))),
      ...(l.segment === null ? [] : long(l.segment)),
    ]);
    if (block.negative) out.push(...long(BigInt(-block.links.length)), ...long(BigInt(items.length)), ...items);
    else out.push(...long(BigInt(block.links.length)), ...items);
  }
  out.push(0, ...(s.trailing ?? []));
  return Buffer.from(out);
}

/** The general path's verdict: the body, or the error class it throws. */
function general(avro: Buffer): Buffer | string {
  try {
    assertWellFormedAvro(type, avro);
    return objectBody(validateSnapshot(type.fromBuffer(avro, undefined, true), LIMITS, NOW));
  } catch (error) {
    return error instanceof ValidationError ? 'ValidationError' : 'DecodeError';
  }
}

function agree(avro: Buffer): 'fast' | 'fallback' {
  const fast = transcodeSnapshot(avro, LIMITS, NOW);
  if (fast === undefined) return 'fallback';
  const reference = general(avro);
  expect(reference, `general path rejects what the transcoder accepted: ${avro.toString('hex')}`).toBeInstanceOf(Buffer);
  expect(fast.json.toString('utf8')).toBe((reference as Buffer).toString('utf8'));
  expect(fast.json.equals(reference as Buffer)).toBe(true);
  return 'fast';
}

const EDGE_IDS = [
  0n,
  1n,
  -1n,
  9n,
  10n,
  99n,
  100n,
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n,
  10n ** 15n,
  2n ** 52n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 63n - 1n,
  -(2n ** 63n),
];
const EDGE_TIMES = [
  0n,
  BigInt(LIMITS.minLastModified - 1),
  BigInt(LIMITS.minLastModified),
  BigInt(NOW),
  BigInt(NOW + LIMITS.maxFutureSkewSeconds),
  BigInt(NOW + LIMITS.maxFutureSkewSeconds + 1),
  -5n,
  2n ** 60n,
];

function randomShape(random: () => number): Shape {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const id = (): bigint => (random() < 0.3 ? pick(EDGE_IDS) : BigInt(1 + Math.floor(random() * 2 ** 40)));
  const blocks = Array.from({ length: Math.floor(random() * 3) }, () => ({
    negative: random() < 0.3,
    links: Array.from({ length: Math.floor(random() * (random() < 0.1 ? 60 : 8)) }, (): Link => {
      const link: Link = { link: id(), segment: random() < 0.3 ? null : id() };
      if (random() < 0.05) link.branch = pick([2, -1, 5]);
      return link;
    }),
  }));
  return {
    lastModified: random() < 0.3 ? pick(EDGE_TIMES) : BigInt(NOW - Math.floor(random() * 10 ** 6)),
    blocks,
    ...(random() < 0.05 ? { trailing: [pick([0, 1, 0x80])] } : {}),
  };
}

describe('transcodeSnapshot agrees with the zod contract', () => {
  it("gives objectBody()'s bytes for snapshots that avsc encodes, of every size", () => {
    const random = prng(7);
    for (const links of [0, 1, 3, 1000, 50]) {
      const snapshot = {
        last_modified: NOW - links,
        tow_and_go: Array.from({ length: Math.min(links, LIMITS.maxLinks) }, (_, i) => ({
          link_id: 1 + Math.floor(random() * 2 ** 52),
          segment_id: i % 3 === 0 ? null : 1 + Math.floor(random() * 2 ** 31),
        })),
      };
      expect(agree(type.toBuffer(snapshot))).toBe('fast');
    }
  });

  it('accepts only what the general path accepts, over 20,000 random and edge-case inputs (seed 42)', () => {
    const random = prng(42);
    const verdicts = { fast: 0, fallback: 0 };
    for (let i = 0; i < 20_000; i++) verdicts[agree(encode(randomShape(random)))]++;
    // Both branches are exercised, so the agreement above is not vacuous.
    expect(verdicts.fast).toBeGreaterThan(1_000);
    expect(verdicts.fallback).toBeGreaterThan(1_000);
  });

  it('never accepts truncated or bit-flipped bytes that the general path rejects', () => {
    const random = prng(3);
    const valid = encode({
      lastModified: BigInt(NOW),
      blocks: [
        {
          negative: true,
          links: [
            { link: 5n, segment: 7n },
            { link: 6n, segment: null },
          ],
        },
      ],
    });
    for (let cut = 0; cut < valid.length; cut++) agree(valid.subarray(0, cut));
    for (let i = 0; i < 5_000; i++) {
      const mutated = Buffer.from(valid);
      mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
      agree(mutated);
    }
  });

  it.each([
    [
      'several blocks, some with negative counts',
      {
        lastModified: BigInt(NOW),
        blocks: [
          { negative: true, links: [{ link: 1n, segment: 2n }] },
          { negative: false, links: [{ link: 3n, segment: null }] },
        ],
      },
    ],
    ['ids just under 2^31 and 2^52', { lastModified: BigInt(NOW), blocks: [{ negative: false, links: [{ link: 2n ** 31n - 1n, segment: 2n ** 52n - 1n }] }] }],
  ])('takes the fast path for %s', (_name, shape: Shape) => {
    expect(agree(encode(shape))).toBe('fast');
  });
});

describe('transcodeSnapshot leaves to the general path', () => {
  const valid = (n: number, from = 1): Link[] => Array.from({ length: n }, (_, i) => ({ link: BigInt(from + i), segment: null }));
  it.each([
    [
      'one link over maxLinks, across two blocks',
      {
        lastModified: BigInt(NOW),
        blocks: [
          { negative: false, links: valid(30) },
          { negative: true, links: valid(LIMITS.maxLinks - 29, 31) },
        ],
      },
      'ValidationError',
    ],
    ['last_modified one second past the future bound', { lastModified: BigInt(NOW + LIMITS.maxFutureSkewSeconds + 1), blocks: [] }, 'ValidationError'],
    ['last_modified one second before the lower bound', { lastModified: BigInt(LIMITS.minLastModified - 1), blocks: [] }, 'ValidationError'],
    ['a zero segment id', { lastModified: BigInt(NOW), blocks: [{ negative: false, links: [{ link: 1n, segment: 0n }] }] }, 'ValidationError'],
    ['a trailing byte', { lastModified: BigInt(NOW), blocks: [], trailing: [0] }, 'DecodeError'],
    [
      'a union branch that does not exist',
      { lastModified: BigInt(NOW), blocks: [{ negative: false, links: [{ link: 1n, segment: 3n, branch: 2 }] }] },
      'DecodeError',
    ],
  ])('%s', (_name, shape: Shape, verdict) => {
    const avro = encode(shape);
    expect(transcodeSnapshot(avro, LIMITS, NOW)).toBeUndefined();
    expect(general(avro)).toBe(verdict);
  });
});

describe('snapshotBody', () => {
  const framed = (avro: Buffer, plain: boolean): Framed => ({ schemaId: 1, plain, avro, decode: () => type.fromBuffer(avro) });

  it('falls back to zod for an invalid snapshot, which names the field', () => {
    const avro = encode({ lastModified: BigInt(NOW), blocks: [{ negative: false, links: [{ link: -4n, segment: null }] }] });
    expect(() => snapshotBody(framed(avro, true), LIMITS, NOW)).toThrow(/tow_and_go\[0\]\.link_id/);
  });

  it('uses the decoder, not the transcoder, when the writer schema is not the snapshot schema', () => {
    const avro = type.toBuffer({ last_modified: NOW, tow_and_go: [] });
    let decoded = 0;
    const decode = (): unknown => {
      decoded++;
      return type.fromBuffer(avro);
    };
    const result = snapshotBody({ ...framed(avro, false), decode }, LIMITS, NOW);
    expect(decoded).toBe(1);
    expect(result.json.toString()).toBe(`{"last_modified":${NOW},"tow_and_go":[]}`);
  });

  it("lets the decoder's DecodeError through for bytes that are not a snapshot", () => {
    const broken = (): unknown => {
      throw new DecodeError('AVRO_DECODE_FAILED', 'truncated');
    };
    expect(() => snapshotBody({ schemaId: 1, plain: true, avro: Buffer.from([0x02]), decode: broken }, LIMITS, NOW)).toThrow(DecodeError);
  });
});
