/**
 * From samples to summaries: per cell (snapshot size × S3 latency) and variant the median
 * (min–max) over rounds; the ceiling and the ratios are computed within each round first, then
 * summarized, because on a shared 2-core machine only numbers from the same round compare.
 */
import { fmt, type Summary, summarize } from '../common.ts';
import type { LatencyResult } from './latency.ts';
import type { Sample } from './matrix.ts';
import { VARIANTS, type Variant } from './protocol.ts';

export interface VariantStats {
  readonly objectsPerSecond: Summary;
  readonly cpuMsPerObject: Summary;
  readonly maxRssMiB: Summary;
  readonly seconds: Summary;
}

export interface CellStats {
  readonly links: number;
  readonly latencyMs: number;
  readonly n: number;
  readonly variants: Partial<Record<Variant, VariantStats>>;
  /** min(consume-only, raw-put) objects/s of each round; CPU = consume-only + raw-put per object. */
  readonly ceiling: (VariantStats & { readonly boundBy: string }) | undefined;
  readonly serviceOverCeiling: Summary;
  readonly serviceOverNaive: Summary;
}

function stats(samples: readonly Sample[]): VariantStats {
  return {
    objectsPerSecond: summarize(samples.map((s) => s.objectsPerSecond)),
    cpuMsPerObject: summarize(samples.map((s) => s.cpuMsPerObject)),
    maxRssMiB: summarize(samples.map((s) => s.maxRssMiB)),
    seconds: summarize(samples.map((s) => s.seconds)),
  };
}

export function aggregate(samples: readonly Sample[], sizes: readonly number[], latencies: readonly number[]): CellStats[] {
  const cells: CellStats[] = [];
  for (const links of sizes) {
    for (const latencyMs of latencies) {
      const cell = samples.filter((s) => s.links === links && s.latencyMs === latencyMs);
      if (cell.length === 0) continue;
      const variants: Partial<Record<Variant, VariantStats>> = {};
      for (const v of VARIANTS) {
        const of = cell.filter((s) => s.variant === v);
        if (of.length > 0) variants[v] = stats(of);
      }
      const rounds = [...new Set(cell.map((s) => s.round))].sort((a, b) => a - b);
      const at = (v: Variant, round: number) => cell.find((s) => s.variant === v && s.round === round);
      const ceilingRounds: { rate: number; cpu: number; by: Variant; round: number }[] = [];
      const overCeiling: number[] = [];
      const overNaive: number[] = [];
      for (const round of rounds) {
        const consume = at('consume-only', round);
        const put = at('raw-put', round);
        const service = at('service', round);
        const naive = at('naive', round);
        if (consume !== undefined && put !== undefined) {
          const by = consume.objectsPerSecond <= put.objectsPerSecond ? consume : put;
          ceilingRounds.push({ rate: by.objectsPerSecond, cpu: consume.cpuMsPerObject + put.cpuMsPerObject, by: by.variant, round });
          if (service !== undefined) overCeiling.push(service.objectsPerSecond / by.objectsPerSecond);
        }
        if (service !== undefined && naive !== undefined) overNaive.push(service.objectsPerSecond / naive.objectsPerSecond);
      }
      const byCount = (v: Variant) => ceilingRounds.filter((c) => c.by === v).length;
      cells.push({
        links,
        latencyMs,
        n: cell[0]?.n ?? 0,
        variants,
        ceiling:
          ceilingRounds.length === 0
            ? undefined
            : {
                objectsPerSecond: summarize(ceilingRounds.map((c) => c.rate)),
                cpuMsPerObject: summarize(ceilingRounds.map((c) => c.cpu)),
                maxRssMiB: summarize([]),
                seconds: summarize(ceilingRounds.map((c) => (cell[0]?.n ?? 0) / c.rate)),
                boundBy: `${byCount('consume-only') >= byCount('raw-put') ? 'consume-only' : 'raw-put'} (${Math.max(byCount('consume-only'), byCount('raw-put'))}/${ceilingRounds.length})`,
              },
        serviceOverCeiling: summarize(overCeiling),
        serviceOverNaive: summarize(overNaive),
      });
    }
  }
  return cells;
}

/** "median (min–max)", or just the value with one round, or "—". */
export function range(s: Summary | undefined, suffix = ''): string {
  if (s === undefined || s.samples.length === 0) return '—';
  if (s.samples.length === 1 || s.min === s.max) return `${fmt(s.median)}${suffix}`;
  return `${fmt(s.median)}${suffix} (${fmt(s.min)}–${fmt(s.max)})`;
}

export const LABEL: Record<Variant, string> = {
  service: 'service (startConsumerService, defaults)',
  naive: 'naive (eachMessage, one at a time)',
  'consume-only': 'consume-only (Kafka side: eachBatch, commit)',
  'raw-put': 'raw-put (S3 side: bare PUTs)',
};

export function links(n: number): string {
  return `${n.toLocaleString('en-US')} link${n === 1 ? '' : 's'}`;
}

export function latencyLabel(ms: number): string {
  return ms === 0 ? '0 ms (direct)' : `+${ms} ms (proxy)`;
}

export function latencyRows(results: readonly LatencyResult[]): string[][] {
  return results.map((r) => [
    links(r.links),
    latencyLabel(r.latencyMs),
    fmt(r.drainRate),
    `${fmt(r.targetRate)} (achieved ${fmt(r.achievedRate)})`,
    String(r.records),
    fmt(r.p50Ms),
    fmt(r.p90Ms),
    fmt(r.p99Ms),
    fmt(r.maxMs),
    `≤ ${fmt(r.pollMs + r.listRttMs)}`,
  ]);
}
