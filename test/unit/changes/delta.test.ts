import { describe, expect, it } from 'vitest';
import { computeDelta, type Delta, wholeSnapshotDelta } from '../../../src/changes/delta.ts';
import type { Link } from '../../../src/snapshot.ts';
import { prng } from '../../support/prng.ts';

const link = (link_id: number, segment_id: number | null = null): Link => ({ link_id, segment_id });

/** The obvious reference: maps (later entries overwrite earlier ones), then sorted lists. */
function reference(previous: readonly Link[], current: readonly Link[]): Delta {
  const p = new Map(previous.map((l) => [l.link_id, l.segment_id]));
  const c = new Map(current.map((l) => [l.link_id, l.segment_id]));
  const byId = (a: number, b: number) => a - b;
  return {
    gained: [...c.keys()]
      .filter((id) => !p.has(id))
      .sort(byId)
      .map((id) => ({ link_id: id, segment_id: c.get(id) ?? null })),
    lost: [...p.keys()].filter((id) => !c.has(id)).sort(byId),
    segment_changed: [...c.keys()]
      .filter((id) => p.has(id) && p.get(id) !== c.get(id))
      .sort(byId)
      .map((id) => ({ link_id: id, from: p.get(id) ?? null, to: c.get(id) ?? null })),
    previous_links: p.size,
    current_links: c.size,
    previous_duplicates: previous.length - p.size,
    current_duplicates: current.length - c.size,
  };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('computeDelta', () => {
  it("finds the issue's example changes", () => {
    const previous = [link(17806054, 457160414), link(17857686, null), link(17900000, 1)];
    const current = [link(17806054, 457160415), link(17857686, null), link(17950000, 2)];
    expect(computeDelta(previous, current)).toEqual({
      gained: [{ link_id: 17950000, segment_id: 2 }],
      lost: [17900000],
      segment_changed: [{ link_id: 17806054, from: 457160414, to: 457160415 }],
      previous_links: 3,
      current_links: 3,
      previous_duplicates: 0,
      current_duplicates: 0,
    });
  });

  it('counts a segment going to or from null as a change, and null to null as none', () => {
    const delta = computeDelta([link(1, null), link(2, 5), link(3, null)], [link(1, 7), link(2, null), link(3, null)]);
    expect(delta.segment_changed).toEqual([
      { link_id: 1, from: null, to: 7 },
      { link_id: 2, from: 5, to: null },
    ]);
    expect(delta.gained).toEqual([]);
    expect(delta.lost).toEqual([]);
  });

  it('is empty for identical snapshots and for two empty ones', () => {
    const links = [link(1, 2), link(3, null)];
    expect(computeDelta(links, [...links])).toMatchObject({ gained: [], lost: [], segment_changed: [], current_links: 2 });
    expect(computeDelta([], [])).toMatchObject({ gained: [], lost: [], segment_changed: [], current_links: 0, previous_links: 0 });
  });

  it('against nothing, gains every link', () => {
    expect(wholeSnapshotDelta([link(9, 1), link(4, null)])).toMatchObject({
      gained: [
        { link_id: 4, segment_id: null },
        { link_id: 9, segment_id: 1 },
      ],
      lost: [],
      previous_links: 0,
      current_links: 2,
    });
    expect(computeDelta([link(4), link(2)], [])).toMatchObject({ gained: [], lost: [2, 4] });
  });

  it('gives every list in link_id order whatever order the links came in', () => {
    const random = prng(7);
    const previous = [link(5, 1), link(1, 1), link(9, 1), link(3, 1)];
    const current = [link(8, 2), link(3, 2), link(1, 1), link(2, 2), link(9, 3)];
    const expected = computeDelta(previous, current);
    expect(expected.gained.map((g) => g.link_id)).toEqual([2, 8]);
    expect(expected.lost).toEqual([5]);
    expect(expected.segment_changed.map((s) => s.link_id)).toEqual([3, 9]);
    for (let i = 0; i < 20; i++) expect(computeDelta(shuffled(previous, random), shuffled(current, random))).toEqual(expected);
  });

  it('keeps the last of duplicate link_ids, as upserts in order would, and counts the others', () => {
    const previous = [link(1, 10), link(2, 20), link(1, 11)];
    const current = [link(1, 11), link(2, 21), link(2, 20), link(3, 30), link(3, 31), link(3, 32)];
    expect(computeDelta(previous, current)).toEqual({
      gained: [{ link_id: 3, segment_id: 32 }],
      lost: [],
      segment_changed: [],
      previous_links: 2,
      current_links: 3,
      previous_duplicates: 1,
      current_duplicates: 3,
    });
  });

  it('treats adjacent duplicates in otherwise sorted input the same way', () => {
    expect(computeDelta([], [link(1, 1), link(1, 2), link(2, 3)])).toMatchObject({
      gained: [
        { link_id: 1, segment_id: 2 },
        { link_id: 2, segment_id: 3 },
      ],
      current_duplicates: 1,
    });
  });

  it('orders link_ids up to 2^53 exactly (five radix passes)', () => {
    const big = Number.MAX_SAFE_INTEGER;
    const previous = [link(big, 1), link(big - 2, 1), link(5, 1)];
    const current = [link(big - 1, 2), link(big, 2), link(5, 1), link(big - 1, 3)];
    expect(computeDelta(previous, current)).toEqual(reference(previous, current));
    expect(computeDelta(previous, current).gained).toEqual([{ link_id: big - 1, segment_id: 3 }]);
  });

  it('agrees with the Map reference on shuffled snapshots whose ids need several radix digits', () => {
    for (const bits of [12, 23, 33, 45, 52]) {
      const random = prng(bits);
      const ids = Array.from({ length: 500 }, () => 1 + Math.floor(random() * 2 ** bits));
      const pick = () =>
        shuffled(ids, random)
          .slice(0, 400)
          .map((id) => link(id, random() < 0.5 ? null : Math.floor(random() * 3)));
      const previous = pick();
      const current = pick();
      expect(computeDelta(previous, current), `${bits} bits`).toEqual(reference(previous, current));
    }
  });

  it('agrees with the Map reference on random snapshots (sorted, shuffled, with duplicates)', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const random = prng(seed);
      const ids = Math.floor(random() * 400) + 1;
      const pick = (n: number) => Array.from({ length: n }, () => link(1 + Math.floor(random() * ids), random() < 0.3 ? null : 1 + Math.floor(random() * 4)));
      let previous = pick(Math.floor(random() * 300));
      let current = pick(Math.floor(random() * 300));
      if (seed % 3 === 0) {
        // Sorted without duplicates: the fast path.
        const dedupe = (links: Link[]) => [...new Map(links.map((l) => [l.link_id, l])).values()].sort((a, b) => a.link_id - b.link_id);
        previous = dedupe(previous);
        current = dedupe(current);
      }
      expect(computeDelta(previous, current), `seed ${seed}`).toEqual(reference(previous, current));
    }
  });
});
