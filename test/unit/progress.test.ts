import { describe, expect, it, vi } from 'vitest';
import { formatDuration, formatLine, type ProgressReport, RateWindow, report, startProgress } from '../../src/progress.ts';

describe('RateWindow', () => {
  it('has no rate until two samples are at least half a second apart', () => {
    const w = new RateWindow(10_000);
    expect(w.rate()).toBeUndefined();
    w.add(0, 0);
    w.add(400, 100);
    expect(w.rate()).toBeUndefined();
    w.add(500, 100);
    expect(w.rate()).toBe(200);
  });

  it('measures over the recent window, so a slow start does not drag the rate down', () => {
    const w = new RateWindow(10_000);
    w.add(0, 0);
    w.add(30_000, 0); // 30 s joining the group
    for (let t = 31_000; t <= 50_000; t += 1000) w.add(t, (t - 30_000) * 2);
    expect(w.rate()).toBe(2000);
  });
});

describe('report', () => {
  it.each([
    [{ done: 0, total: 1000 }, 100, 10],
    [{ done: 999, total: 1000 }, 100, 1],
    [{ done: 500, total: 1000 }, 3, 167],
    [{ done: 1000, total: 1000 }, undefined, 0],
    [{ done: 10, total: 1000 }, undefined, undefined],
    [{ done: 10, total: 1000 }, 0, undefined],
  ])('%j at %s/s leaves %s seconds', (sample, rate, eta) => {
    expect(report(sample, rate).etaSeconds).toBe(eta);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [7, '0:07'],
    [125, '2:05'],
    [3600, '1:00:00'],
    [3723, '1:02:03'],
  ])('%s s is %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('formatLine', () => {
  it('shows done of total, the percentage, the rate and the time left', () => {
    const r: ProgressReport = { done: 12_345, total: 50_000, ratePerSecond: 1234.4, etaSeconds: 31 };
    expect(formatLine('replay', r)).toBe('replay 12,345 of 50,000 records (24.7%) · 1,234/s · 0:31 left');
  });

  it('shows dashes before there is a rate, and 100% for an empty total', () => {
    expect(formatLine('replay', { done: 0, total: 10, ratePerSecond: undefined, etaSeconds: undefined })).toBe('replay 0 of 10 records (0.0%) · –/s · – left');
    expect(formatLine('replay', { done: 0, total: 0, ratePerSecond: undefined, etaSeconds: 0 })).toContain('(100.0%)');
  });
});

describe('startProgress', () => {
  const setup = (tty: boolean, intervalMs: number) => {
    let done = 0;
    let now = 0;
    const writes: string[] = [];
    const logs: ProgressReport[] = [];
    const handle = startProgress({
      label: 'replay',
      sample: () => ({ done, total: 1000 }),
      tty,
      intervalMs,
      write: (t) => writes.push(t),
      log: (r) => logs.push(r),
      now: () => now,
      redrawMs: 100,
    });
    const step = (ms: number, to: number) => {
      now += ms;
      done = to;
      vi.advanceTimersByTime(ms);
    };
    return { handle, writes, logs, step };
  };

  it('redraws one line in place on a terminal and ends it with a newline when stopped', () => {
    vi.useFakeTimers();
    try {
      const { handle, writes, logs, step } = setup(true, 0);
      step(1000, 500);
      expect(writes.length).toBe(10);
      expect(writes.every((w) => w.startsWith('\r\x1b[2K') && !w.includes('\n'))).toBe(true);
      expect(writes.at(-1)).toContain('500 of 1,000 records (50.0%) · 500/s · 0:01 left');
      step(1000, 1000);
      handle.stop();
      handle.stop();
      expect(writes.at(-2)).toContain('1,000 of 1,000 records (100.0%)');
      expect(writes.at(-1)).toBe('\n');
      expect(writes.filter((w) => w === '\n')).toHaveLength(1);
      expect(logs).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('logs a JSON-able report every interval when not on a terminal, and writes nothing', () => {
    vi.useFakeTimers();
    try {
      const { handle, writes, logs, step } = setup(false, 1000);
      step(999, 100);
      expect(logs).toEqual([]);
      step(1, 100);
      step(1000, 300);
      handle.stop();
      expect(logs).toEqual([
        { done: 100, total: 1000, ratePerSecond: 100, etaSeconds: 9 },
        { done: 300, total: 1000, ratePerSecond: 150, etaSeconds: 5 },
      ]);
      expect(writes).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('is quiet when not on a terminal and the interval is 0', () => {
    vi.useFakeTimers();
    try {
      const { handle, writes, logs, step } = setup(false, 0);
      step(60_000, 1000);
      handle.stop();
      expect(writes).toEqual([]);
      expect(logs).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});
