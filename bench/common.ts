/**
 * Shared by the benchmarks: statistics over rounds, machine info, Markdown tables and the JSON
 * results file. Nothing here measures anything.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max - min) / median, so noise can be read at a glance. */
  readonly spread: number;
  readonly samples: readonly number[];
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, spread: Number.NaN, samples: [] };
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  const min = sorted[0] ?? Number.NaN;
  const max = sorted[n - 1] ?? Number.NaN;
  return { median, min, max, spread: median === 0 ? 0 : (max - min) / median, samples: [...samples] };
}

/** Significant-figure formatting: 3 figures, no exponent for the magnitudes seen here. */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, digits - 1 - magnitude);
  return x.toLocaleString('en-US', { maximumFractionDigits: decimals, minimumFractionDigits: decimals });
}

/** "median (min–max, ±spread%)". */
export function fmtSummary(s: Summary, digits = 3): string {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)}, ±${Math.round((s.spread * 100) / 2)}%)`;
}

export function fmtRatio(s: Summary): string {
  return `${fmt(s.median)}× (${fmt(s.min)}–${fmt(s.max)})`;
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  const git = (args: string[]) => {
    const r = spawnSync('git', args, { cwd: BENCH_DIR, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    cpuModel: cpus[0]?.model,
    totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
    loadavgAtStart: os.loadavg(),
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirty: (git(['status', '--porcelain']) ?? '') !== '',
  };
}

/** Writes bench/results/<ISO time>.json (colons replaced, so the name is portable). */
export function writeResults(kind: string, startedAt: Date, data: unknown): string {
  const dir = `${BENCH_DIR}results/`;
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${startedAt.toISOString().replace(/:/g, '-')}${kind === '' ? '' : `-${kind}`}.json`;
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/** Rotates the variant order each round, so no variant always runs first (warm caches, JIT). */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
