/**
 * Progress of a long-running command (replay): how much of a known total is done, the recent rate
 * and the time left. On a terminal it is one line redrawn in place; elsewhere (a file, a pipe, a
 * CI log) it is a JSON log line every `intervalMs`, or nothing when that is 0, so that logs are not
 * flooded with carriage returns.
 *
 * Progress goes to stderr with the logs: stdout carries the command's result line, which scripts
 * parse.
 */

import type { Logger } from 'pino';
import type { Metrics } from './metrics.ts';

export interface ProgressSample {
  readonly done: number;
  readonly total: number;
}

export interface ProgressReport extends ProgressSample {
  /** Units per second over the recent window; undefined until two samples are far enough apart. */
  readonly ratePerSecond: number | undefined;
  /** Seconds left at that rate; undefined without a rate (or when the rate is 0 and work remains). */
  readonly etaSeconds: number | undefined;
}

/** The rate over the last `windowMs`, from (time, done) samples. Old samples fall out of the window. */
export class RateWindow {
  readonly #windowMs: number;
  readonly #samples: { at: number; done: number }[] = [];

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  add(at: number, done: number): void {
    this.#samples.push({ at, done });
    // Keep one sample at or before the window's start, so the rate always spans the whole window.
    while (this.#samples.length > 2 && (this.#samples[1]?.at ?? at) <= at - this.#windowMs) this.#samples.shift();
  }

  rate(): number | undefined {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (first === undefined || last === undefined || last.at - first.at < 500) return undefined;
    return ((last.done - first.done) * 1000) / (last.at - first.at);
  }
}

/** Pure. */
export function report(sample: ProgressSample, ratePerSecond: number | undefined): ProgressReport {
  const left = Math.max(0, sample.total - sample.done);
  const etaSeconds = left === 0 ? 0 : ratePerSecond === undefined || ratePerSecond <= 0 ? undefined : Math.ceil(left / ratePerSecond);
  return { ...sample, ratePerSecond: ratePerSecond === undefined ? undefined : Math.round(ratePerSecond * 10) / 10, etaSeconds };
}

/** Pure: `1:02:03`, `2:05`, `0:07`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** Pure: the terminal line, e.g. `replay 12,345 of 50,000 records (24.7%) · 1,234/s · 0:31 left`. */
export function formatLine(label: string, r: ProgressReport): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const percent = r.total === 0 ? 100 : (100 * r.done) / r.total;
  const rate = r.ratePerSecond === undefined ? '–/s' : `${n(r.ratePerSecond)}/s`;
  const eta = r.etaSeconds === undefined ? '–' : formatDuration(r.etaSeconds);
  return `${label} ${n(r.done)} of ${n(r.total)} records (${percent.toFixed(1)}%) · ${rate} · ${eta} left`;
}

export interface ProgressOptions {
  readonly label: string;
  readonly sample: () => ProgressSample;
  /** True when `write` goes to a terminal. */
  readonly tty: boolean;
  /** How often a line is logged when not on a terminal; 0: never. */
  readonly intervalMs: number;
  readonly write: (text: string) => void;
  readonly log: (report: ProgressReport) => void;
  readonly now?: () => number;
  /** Redraw interval on a terminal. */
  readonly redrawMs?: number;
}

export interface ProgressHandle {
  /** Samples once more now (on a terminal: draws the final line and ends it). */
  tick(): void;
  stop(): void;
}

export function startProgress(o: ProgressOptions): ProgressHandle {
  const now = o.now ?? Date.now;
  const window = new RateWindow(10_000);
  const take = (): ProgressReport => {
    const sample = o.sample();
    window.add(now(), sample.done);
    return report(sample, window.rate());
  };
  take();
  const tick = o.tty ? () => o.write(`\r\x1b[2K${formatLine(o.label, take())}`) : () => o.log(take());
  const every = o.tty ? (o.redrawMs ?? 500) : o.intervalMs;
  const timer = every > 0 ? setInterval(tick, every) : undefined;
  timer?.unref();
  let stopped = false;
  return {
    tick,
    stop: () => {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      if (o.tty) {
        tick();
        o.write('\n');
      }
    },
  };
}

/** The live service's periodic progress line (PROGRESS_INTERVAL_MS; 0 = none): what it has done since start. */
export function logProgressEvery(intervalMs: number, metrics: Metrics, stalled: () => number, log: Logger): { stop(): void } {
  if (intervalMs <= 0) return { stop: () => undefined };
  const timer = setInterval(() => {
    log.info(
      {
        records: metrics.records.total(),
        created: metrics.records.get({ outcome: 'created' }),
        unchanged: metrics.records.get({ outcome: 'unchanged' }),
        deadLettered: metrics.records.get({ outcome: 'dead_lettered' }),
        retries: metrics.retries.total(),
        stalledPartitions: stalled(),
      },
      'progress',
    );
  }, intervalMs).unref();
  return { stop: () => clearInterval(timer) };
}
