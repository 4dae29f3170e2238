/**
 * The stack is shared: other engineers restart services (and tests inject S3 latency) while the
 * benchmark runs. Before every round of a cell the stack is probed; a round during which a
 * service's pid file changed (someone restarted it) is thrown away and rerun. The benchmark never
 * starts, stops or restarts anything in the stack.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config.ts';
import { ROOT, s3, withAdmin } from '../../test/support/stack.ts';

const DEFAULTS = loadConfig({});

/** The pids of the stack's services, from stack.sh's own pid files; a change means a restart. */
export function stackPids(): string {
  return ['kafka', 'registry', 's3proxy']
    .map((svc) => {
      try {
        return `${svc}=${readFileSync(`${ROOT}.stack/run/${svc}.pid`, 'utf8').trim()}`;
      } catch {
        return `${svc}=none`;
      }
    })
    .join(' ');
}

/** One quick request to each service; returns the S3 round-trip in ms, or throws. */
async function probeStack(): Promise<number> {
  const res = await fetch(`${DEFAULTS.SCHEMA_REGISTRY_URL}/subjects`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`registry: HTTP ${res.status}`);
  await withAdmin((admin) => admin.listTopics());
  const client = s3();
  try {
    const t0 = performance.now();
    await client.send(new ListObjectsV2Command({ Bucket: DEFAULTS.S3_BUCKET, Prefix: 'bench-probe/', MaxKeys: 1 }), { abortSignal: AbortSignal.timeout(5000) });
    return performance.now() - t0;
  } finally {
    client.destroy();
  }
}

/** Waits until every service answers, and S3 answers fast (no latency injection), 3 times in a row. */
export async function waitForStack(log: (line: string) => void): Promise<void> {
  const started = Date.now();
  let good = 0;
  let last = '';
  while (good < 3) {
    try {
      const ms = await probeStack();
      if (ms > 500) throw new Error(`S3 answered in ${Math.round(ms)} ms (latency injection by a test?)`);
      good++;
    } catch (error) {
      good = 0;
      const what = String(error);
      if (what !== last) log(`stack not ready: ${what}; waiting`);
      last = what;
    }
    if (Date.now() - started > 10 * 60_000) throw new Error(`the stack was not ready for 10 minutes (${last})`);
    if (good < 3) await sleep(good > 0 ? 200 : 2000);
  }
}

/**
 * Runs `fn` with the stack probed first and its pids unchanged throughout; reruns it (after
 * waiting for the stack) when it fails or a pid changed, up to `retries` times.
 */
export async function guarded<T>(what: string, retries: number, log: (line: string) => void, fn: () => Promise<T>): Promise<{ value: T; retried: string[] }> {
  const retried: string[] = [];
  for (let attempt = 0; ; attempt++) {
    try {
      await waitForStack(log);
      const before = stackPids();
      const value = await fn();
      const after = stackPids();
      if (after !== before) throw new Error(`a stack service restarted during ${what} (${before} → ${after}); its numbers are discarded`);
      return { value, retried };
    } catch (error) {
      if (attempt >= retries) throw error;
      retried.push(String(error));
      log(`${what} failed: ${String(error)}; waiting for the stack, then running it again`);
      await sleep(5000);
    }
  }
}
