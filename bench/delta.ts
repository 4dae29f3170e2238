/**
 * CPU-only: the change stream's cost (issue 12, item 4) for two maximum-size snapshots.
 *
 * Two 200,000-link snapshots (MAX_LINKS) where the second has ~1 % of links lost, ~1 % gained and
 * ~1 % with another segment (20 % of segments null, as in the feed). Variants, all in one
 * process, interleaved, the order rotated each round:
 *
 *   (a)  computeDelta on links in link_id order, as the feed sends them (the no-sort fast path).
 *   (a2) computeDelta on the same links shuffled (its radix sort).
 *   (b)  the other design: a Map of previous link_id → segment, one pass over current, then the
 *        three lists sorted (only they need to be: ~6,000 entries).
 *   (c)  naive baseline: a Set of JSON.stringify(link) per snapshot, the two set differences, then
 *        the strings parsed back and paired by link_id to tell segment changes from gains/losses.
 *   (u)  upper bound: one pass over both arrays reading link_id and segment_id, nothing else.
 *   (e)  Avro encoding of the change record of (a) with avsc (what AvroEncoder does after its
 *        cached registry lookup), and, as a row of its own, of the first change (no base: the
 *        whole snapshot as gained).
 *
 * Every variant's output is checked equal to (a)'s before anything is timed.
 *
 *   node bench/delta.ts [--links 200000] [--runs 20] [--warmup 3]
 */

import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { changeRecord, loadChangeSchema } from '../src/changes/change-record.ts';
import { computeDelta, type Delta } from '../src/changes/delta.ts';
import type { Link } from '../src/snapshot.ts';
import { prng } from '../test/support/prng.ts';
import { fmtRatio, fmtSummary, machineInfo, markdownTable, rotate, type Summary, summarize, writeResults } from './common.ts';

const { values: args } = parseArgs({
  options: {
    links: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
  },
});
const LINKS = Number(args.links);
const RUNS = Number(args.runs);
const WARMUP = Number(args.warmup);

/** Holds each variant's last result, so no loop can be optimised away. */
let keep: unknown;

function snapshots(): { previous: Link[]; current: Link[] } {
  const random = prng(2026);
  const segment = () => (random() < 0.2 ? null : 400_000_000 + Math.floor(random() * 100_000_000));
  const previous: Link[] = [];
  let id = 17_000_000;
  for (let i = 0; i < LINKS; i++) {
    // Steps of at least 2, so link_id + 1 is free for a gained link.
    id += 2 + Math.floor(random() * 20);
    previous.push({ link_id: id, segment_id: segment() });
  }
  const current: Link[] = [];
  for (const l of previous) {
    const r = random();
    if (r < 0.01) continue; // lost
    current.push(r < 0.02 ? { link_id: l.link_id, segment_id: l.segment_id === null ? 1 : null } : l);
    if (r >= 0.02 && r < 0.03) current.push({ link_id: l.link_id + 1, segment_id: segment() }); // gained
  }
  return { previous, current };
}

function shuffled<T>(items: readonly T[]): T[] {
  const random = prng(7);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function mapDelta(previous: readonly Link[], current: readonly Link[]): Delta {
  const before = new Map<number, number | null>();
  for (const l of previous) before.set(l.link_id, l.segment_id);
  const after = new Map<number, number | null>();
  for (const l of current) after.set(l.link_id, l.segment_id);
  const gained: Delta['gained'] = [];
  const segment_changed: Delta['segment_changed'] = [];
  for (const [link_id, to] of after) {
    const from = before.get(link_id);
    if (from === undefined) gained.push({ link_id, segment_id: to });
    else if (from !== to) segment_changed.push({ link_id, from, to });
  }
  const lost: number[] = [];
  for (const link_id of before.keys()) if (!after.has(link_id)) lost.push(link_id);
  gained.sort((a, b) => a.link_id - b.link_id);
  segment_changed.sort((a, b) => a.link_id - b.link_id);
  lost.sort((a, b) => a - b);
  return {
    gained,
    lost,
    segment_changed,
    previous_links: before.size,
    current_links: after.size,
    previous_duplicates: previous.length - before.size,
    current_duplicates: current.length - after.size,
  };
}

function naiveDelta(previous: readonly Link[], current: readonly Link[]): Pick<Delta, 'gained' | 'lost' | 'segment_changed'> {
  const before = new Set(previous.map((l) => JSON.stringify(l)));
  const after = new Set(current.map((l) => JSON.stringify(l)));
  const added = [...after].filter((s) => !before.has(s)).map((s) => JSON.parse(s) as Link);
  const removed = new Map(
    [...before]
      .filter((s) => !after.has(s))
      .map((s) => JSON.parse(s) as Link)
      .map((l) => [l.link_id, l.segment_id]),
  );
  const gained: Delta['gained'] = [];
  const segment_changed: Delta['segment_changed'] = [];
  for (const l of added) {
    if (removed.has(l.link_id)) {
      segment_changed.push({ link_id: l.link_id, from: removed.get(l.link_id) ?? null, to: l.segment_id });
      removed.delete(l.link_id);
    } else gained.push({ link_id: l.link_id, segment_id: l.segment_id });
  }
  return {
    gained: gained.sort((a, b) => a.link_id - b.link_id),
    lost: [...removed.keys()].sort((a, b) => a - b),
    segment_changed: segment_changed.sort((a, b) => a.link_id - b.link_id),
  };
}

function readOnly(previous: readonly Link[], current: readonly Link[]): number {
  let sum = 0;
  for (let i = 0; i < previous.length; i++) {
    const l = previous[i] as Link;
    sum += l.link_id + (l.segment_id ?? 0);
  }
  for (let i = 0; i < current.length; i++) {
    const l = current[i] as Link;
    sum += l.link_id + (l.segment_id ?? 0);
  }
  return sum;
}

const { previous, current } = snapshots();
const previousShuffled = shuffled(previous);
const currentShuffled = shuffled(current);
const { type } = loadChangeSchema();
const source = { key: 'tow-and-go/1684216575.json', lastModified: 1_684_216_575, sha256: 'ab'.repeat(32) };
const base = { key: 'tow-and-go/1684216515.json', lastModified: 1_684_216_515 };
const delta = computeDelta(previous, current);
const record = changeRecord(source, base, delta);
const firstRecord = changeRecord(source, undefined, computeDelta([], current));

const lists = (d: Pick<Delta, 'gained' | 'lost' | 'segment_changed'>) => JSON.stringify([d.gained, d.lost, d.segment_changed]);
const expected = lists(delta);
if (lists(computeDelta(previousShuffled, currentShuffled)) !== expected) throw new Error('(a2) differs from (a)');
if (lists(mapDelta(previous, current)) !== expected) throw new Error('(b) differs from (a)');
if (lists(naiveDelta(previous, current)) !== expected) throw new Error('(c) differs from (a)');

type Name = 'a' | 'a2' | 'b' | 'c' | 'u' | 'e' | 'e0';
const VARIANTS: Record<Name, { label: string; run: () => unknown }> = {
  a: { label: '(a) computeDelta, links in link_id order', run: () => computeDelta(previous, current) },
  a2: { label: '(a2) computeDelta, links shuffled (radix sort)', run: () => computeDelta(previousShuffled, currentShuffled) },
  b: { label: '(b) Map + sort of the outputs', run: () => mapDelta(previous, current) },
  c: { label: '(c) naive: JSON.stringify-per-link Set diff', run: () => naiveDelta(previous, current) },
  u: { label: '(u) upper bound: read both arrays once', run: () => readOnly(previous, current) },
  e: { label: '(e) Avro encoding of the change (avsc toBuffer)', run: () => type.toBuffer(record) },
  e0: { label: '(e0) Avro encoding of a first change (whole snapshot gained)', run: () => type.toBuffer(firstRecord) },
};
const NAMES = Object.keys(VARIANTS) as Name[];

const samples = new Map<Name, number[]>(NAMES.map((n) => [n, []]));
for (let round = 0; round < WARMUP + RUNS; round++) {
  for (const name of rotate(NAMES, round)) {
    const start = process.hrtime.bigint();
    keep = VARIANTS[name].run();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (round >= WARMUP) samples.get(name)?.push(ms);
  }
}

const summaries = NAMES.map((name) => ({ name, label: VARIANTS[name].label, summary: summarize(samples.get(name) ?? []) }));
/** Ratios within each run, then their median (bench/README.md: compare ratios from one run). */
function ratios(numerator: (k: number) => number, denominator: (k: number) => number): Summary {
  return summarize(Array.from({ length: RUNS }, (_, k) => numerator(k) / denominator(k)));
}
const sample = (name: Name) => (k: number) => samples.get(name)?.[k] ?? Number.NaN;
/** The encoding rows are costs added to a delta, not contenders: no ratios. */
const contender = (name: Name) => name !== 'e' && name !== 'e0';
const rows = summaries.map(({ name, label, summary }) => [
  label,
  fmtSummary(summary),
  contender(name) ? fmtRatio(ratios(sample(name), sample('u'))) : '—',
  contender(name) ? fmtRatio(ratios(sample('c'), sample(name))) : '—',
]);
const encoded = type.toBuffer(record);
const first = type.toBuffer(firstRecord);
const sizes = [
  ['the change (1 % each)', encoded.length, gzipSync(encoded).length],
  ['a first change (200,000 gained)', first.length, gzipSync(first).length],
] as const;

console.log(
  `${LINKS.toLocaleString('en-US')} → ${current.length.toLocaleString('en-US')} links; gained ${delta.gained.length}, lost ${delta.lost.length}, segment changed ${delta.segment_changed.length}`,
);
console.log(`node ${process.version}; ${RUNS} runs after ${WARMUP} warm-up, order rotated each run; ms median (min–max, ±spread)\n`);
console.log(markdownTable(['variant', 'ms', '× upper bound', 'naive ÷ this'], rows));
console.log(
  `\n${markdownTable(
    ['record', 'Avro bytes', 'gzip bytes'],
    sizes.map(([what, raw, gz]) => [what, raw.toLocaleString('en-US'), gz.toLocaleString('en-US')]),
  )}`,
);
const file = writeResults('delta', new Date(), {
  machine: machineInfo(),
  parameters: { links: LINKS, runs: RUNS, warmup: WARMUP },
  counts: {
    previous: previous.length,
    current: current.length,
    gained: delta.gained.length,
    lost: delta.lost.length,
    segmentChanged: delta.segment_changed.length,
  },
  sizes: sizes.map(([what, avro, gzip]) => ({ what, avro, gzip })),
  summaries,
});
console.log(`\n${file}`);
if (keep === undefined) throw new Error('unreachable');
