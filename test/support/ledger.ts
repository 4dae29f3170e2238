/**
 * The ledger after a fault test: every published snapshot is in S3 with the right bytes, or in the
 * DLQ with its reason; nothing is lost; committed offsets never moved backwards.
 */
import { expect } from 'vitest';
import { objectBody, type Snapshot } from '../../src/snapshot.ts';
import { getObject, listKeys, offsets, readTopic, type TestEnv, waitFor } from './stack.ts';

export interface Ledger {
  readonly published: number;
  readonly landed: number;
  readonly deadLettered: number;
  readonly lost: number;
}

/**
 * Waits for exactly the expected keys (never a count: S3Proxy lists a temporary file mid-write),
 * then checks bytes, then waits for the commits to reach the log end (a DLQ produce comes before its
 * commit), then checks the DLQ.
 */
export async function assertLedger(t: TestEnv, landed: readonly Snapshot[], deadLettered: ReadonlyMap<string, string> = new Map()): Promise<Ledger> {
  const expected = [...new Set(landed.map((s) => `${t.prefix}${s.last_modified}.json`))].sort();
  await waitFor(
    `exactly ${expected.length} objects under ${t.prefix}`,
    async () => {
      const keys = await listKeys(t.prefix);
      return keys.length === expected.length && keys.every((k, i) => k === expected[i]);
    },
    240_000,
    500,
  );
  let wrong = 0;
  for (const s of landed) {
    const { body } = await getObject(`${t.prefix}${s.last_modified}.json`);
    if (body !== objectBody(s).toString('utf8')) wrong++;
  }
  const { committed, end } = await waitFor(
    'committed offsets at the log end',
    async () => {
      const o = await offsets(t);
      return [...o.end].every(([p, high]) => high === '0' || o.committed.get(p) === high) ? o : undefined;
    },
    60_000,
  );
  const dlq = await readTopic(t.dlqTopic);
  const codes = new Map(dlq.map((r) => [r.headers['__connect.errors.offset'] ?? '', r.headers['__tow_and_go.errors.code'] ?? '']));
  for (const [offset, code] of deadLettered) expect(codes.get(offset), `DLQ entry for offset ${offset}`).toBe(code);
  expect([...committed].filter(([p]) => end.get(p) !== '0').every(([p, c]) => c === end.get(p))).toBe(true);
  expect(wrong, 'objects with the wrong bytes').toBe(0);
  const ledger = { published: landed.length + deadLettered.size, landed: landed.length - wrong, deadLettered: dlq.length, lost: wrong };
  expect(ledger.lost).toBe(0);
  return ledger;
}

/** Samples committed offsets; `stop()` fails if any partition's committed offset ever went down. */
export function watchCommits(t: TestEnv, everyMs = 500): { stop(): Promise<number> } {
  const highest = new Map<number, bigint>();
  let regressions = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const { committed } = await offsets(t);
        for (const [p, o] of committed) {
          const at = BigInt(o);
          if (at < 0n) continue;
          const before = highest.get(p);
          if (before !== undefined && at < before) regressions++;
          if (before === undefined || at > before) highest.set(p, at);
        }
      } catch {
        // The broker may be down (outage tests); the next sample tells.
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return regressions;
    },
  };
}

/** GET on the consumer's HTTP port: the status (0 when it does not answer). */
export async function httpStatus(port: number, path: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** One sample value from the consumer's /metrics (undefined when absent). */
export async function metric(port: number, series: string): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
