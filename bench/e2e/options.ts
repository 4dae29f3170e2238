/**
 * Flags of `npm run bench` (bench/run.ts). `--quick` is the CI gate: one small cell, no naive,
 * no latency phase, RESULTS.md left alone, exit 1 on a large regression.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { VARIANTS, type Variant } from './protocol.ts';

export interface Options {
  readonly quick: boolean;
  readonly sizes: readonly number[];
  /** Snapshots per size. */
  readonly counts: ReadonlyMap<number, number>;
  readonly latencies: readonly number[];
  readonly rounds: number;
  readonly variants: readonly Variant[];
  readonly partitions: number;
  readonly timeoutMs: number;
  readonly roundRetries: number;
  readonly keep: boolean;
  /** The latency-at-half-load phase. */
  readonly latencyPhase: boolean;
  readonly latencyRecords: number;
  readonly latencySeconds: number;
  readonly pollMs: number;
  /** Rewrite bench/RESULTS.md and bench/results-chart.svg. */
  readonly markdown: boolean;
  /** PUTs in flight for raw-put: what the service can have at most. */
  readonly concurrency: number;
  readonly argv: readonly string[];
}

/** 3 → 2,000, 1,000 → 600, 50,000 → 60: roughly the same bytes per size, within limits. */
export function defaultCount(links: number): number {
  return Math.max(60, Math.min(2000, Math.round(600_000 / links)));
}

function list(s: string, what: string): number[] {
  const values = s.split(',').map((x) => Number(x.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 0)) throw new Error(`--${what}: expected integers, got ${s}`);
  return values;
}

function positive(s: string, what: string): number {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${what}: expected a positive integer, got ${s}`);
  return v;
}

export function parseOptions(argv: readonly string[]): Options {
  const { values: a } = parseArgs({
    args: [...argv],
    allowNegative: true,
    options: {
      quick: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      /** L=N pairs, for any size; --snapshots-<L> for the default sizes. */
      snapshots: { type: 'string' },
      'snapshots-3': { type: 'string' },
      'snapshots-1000': { type: 'string' },
      'snapshots-50000': { type: 'string' },
      latencies: { type: 'string' },
      rounds: { type: 'string' },
      variants: { type: 'string' },
      partitions: { type: 'string', default: '6' },
      'timeout-s': { type: 'string', default: '300' },
      'round-retries': { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
      'latency-phase': { type: 'boolean' },
      'latency-records': { type: 'string', default: '300' },
      'latency-seconds': { type: 'string', default: '20' },
      'poll-ms': { type: 'string', default: '5' },
      markdown: { type: 'boolean' },
    },
  });
  const quick = a.quick;
  const sizes = list(a.sizes ?? (quick ? '1000' : '3,1000,50000'), 'sizes');
  if (sizes.some((s) => s < 1)) throw new Error('--sizes: every size must be at least 1 link');
  // Quick mode: enough snapshots that start-up (connect, join, first schema lookup) does not decide the
  // ratio, and 3 rounds so one noisy round cannot fail CI on its own.
  const counts = new Map(sizes.map((s) => [s, quick ? 1000 : defaultCount(s)]));
  for (const pair of (a.snapshots ?? '').split(',').filter((p) => p !== '')) {
    const [links, n] = pair.split('=');
    counts.set(positive(links ?? '', 'snapshots'), positive(n ?? '', 'snapshots'));
  }
  for (const [flag, links] of [
    ['snapshots-3', 3],
    ['snapshots-1000', 1000],
    ['snapshots-50000', 50000],
  ] as const) {
    const v = a[flag];
    if (v !== undefined) counts.set(links, positive(v, flag));
  }
  const variants = (a.variants ?? (quick ? 'service,consume-only,raw-put' : VARIANTS.join(','))).split(',').map((v) => v.trim());
  for (const v of variants) if (!(VARIANTS as readonly string[]).includes(v)) throw new Error(`--variants: unknown variant ${v}`);
  const partitions = positive(a.partitions, 'partitions');
  const defaults = loadConfig({});
  return {
    quick,
    sizes,
    counts,
    latencies: list(a.latencies ?? (quick ? '0' : '0,30'), 'latencies'),
    rounds: positive(a.rounds ?? '3', 'rounds'),
    variants: variants as Variant[],
    partitions,
    timeoutMs: positive(a['timeout-s'], 'timeout-s') * 1000,
    roundRetries: Number(a['round-retries']),
    keep: a.keep,
    latencyPhase: a['latency-phase'] ?? (!quick && variants.includes('service')),
    latencyRecords: positive(a['latency-records'], 'latency-records'),
    latencySeconds: positive(a['latency-seconds'], 'latency-seconds'),
    pollMs: positive(a['poll-ms'], 'poll-ms'),
    markdown: a.markdown ?? !quick,
    concurrency: Math.min(partitions, defaults.PARTITIONS_CONCURRENTLY) * defaults.INFLIGHT_PER_PARTITION,
    argv,
  };
}
