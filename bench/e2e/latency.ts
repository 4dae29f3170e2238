/**
 * Latency at half load: the service (its own child process, defaults, fresh empty topic) gets
 * snapshots at half its median drain rate for the cell, one record per produce request, paced.
 * Latency of a record = the time the object is first seen in S3 − the time its send() was called.
 * The parent polls S3 (directly, never through the latency proxy) with ListObjectsV2 and StartAfter
 * = the key before the lowest key not yet seen (keys are `<prefix><last_modified>.json`, 10-digit
 * numbers, so they sort like the produce order; objects can land out of order across partitions,
 * which is why StartAfter trails the lowest unseen key rather than the highest seen). A key counts
 * as visible at the moment the listing that first shows it returns: an upper bound, late by at most
 * one poll interval plus one listing round trip (both reported).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config.ts';
import { createKafka } from '../../src/source/kafka.ts';
import { deletePrefix, listKeys, s3, silent } from '../../test/support/stack.ts';
import { summarize } from '../common.ts';
import { runVariant } from './child.ts';
import { committedAll, createTopics, deleteGroup, encoderFor, recordCount, topicEnds } from './kafka.ts';
import { type Context, variantEnv } from './matrix.ts';
import { epochMs, type VariantResult } from './protocol.ts';
import { BASE, keyAt, snapshotAt } from './snapshots.ts';

const WARMUP = 12;
const WARMUP_BASE = BASE - 1000;
const BUCKET = loadConfig({}).S3_BUCKET;

export interface LatencyResult {
  readonly links: number;
  readonly latencyMs: number;
  /** The service's median drain rate of the cell, objects/s; records were produced at half of it. */
  readonly drainRate: number;
  readonly targetRate: number;
  readonly achievedRate: number;
  readonly records: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly pollMs: number;
  /** Median ListObjectsV2 round trip: with pollMs, the resolution. */
  readonly listRttMs: number;
  readonly latenciesMs: readonly number[];
  readonly service: VariantResult;
}

/** Nearest-rank percentile. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

async function pollVisible(client: S3Client, prefix: string, count: number, pollMs: number, deadline: number) {
  const visibleAt = new Array<number>(count).fill(Number.NaN);
  const rtts: number[] = [];
  let floor = 0;
  let seen = 0;
  while (seen < count) {
    const asked = performance.now();
    const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, StartAfter: keyAt(prefix, floor - 1) }));
    const at = epochMs();
    rtts.push(performance.now() - asked);
    for (const o of page.Contents ?? []) {
      const i = Number(o.Key?.slice(prefix.length, -'.json'.length)) - BASE;
      if (Number.isInteger(i) && i >= 0 && i < count && Number.isNaN(visibleAt[i])) {
        visibleAt[i] = at;
        seen++;
      }
    }
    while (floor < count && !Number.isNaN(visibleAt[floor])) floor++;
    if (at > deadline) throw new Error(`latency: ${seen}/${count} objects visible before the deadline`);
    await sleep(Math.max(0, pollMs - (performance.now() - asked)));
  }
  return { visibleAt, listRttMs: summarize(rtts).median };
}

export async function measureLatency(ctx: Context, links: number, latencyMs: number, drainRate: number, count: number): Promise<LatencyResult> {
  const { options, admin } = ctx;
  const topic = `bench-e2e-${ctx.runId}-latency-${links}-l${latencyMs}-${randomBytes(3).toString('hex')}`;
  const names = { topic, dlqTopic: `${topic}.dlq`, group: `${topic}-group`, prefix: `bench-e2e-${ctx.runId}/latency-${links}-l${latencyMs}/` };
  const targetRate = drainRate / 2;
  await createTopics(admin, topic, names.dlqTopic, options.partitions);
  // Encoded before anything is timed: pacing must not wait for a 50,000-link encode.
  const encoder = encoderFor(topic);
  const warmup = await Promise.all(Array.from({ length: WARMUP }, (_, i) => encoder.encode(snapshotAt(i, links, WARMUP_BASE))));
  const values: Buffer[] = [];
  for (let i = 0; i < count; i++) values.push(await encoder.encode(snapshotAt(i, links)));
  // One record per request, several requests in flight: the producer must not be what queues.
  const producer = createKafka(loadConfig({}), silent).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const client = s3();
  const produced = new Array<number>(count).fill(Number.NaN);
  let visibleAt: number[] = [];
  let listRttMs = Number.NaN;
  try {
    const drive = async (): Promise<number> => {
      // Warm-up (not measured): the schema lookup, the first S3 connections, the first fetches.
      // One record per request: twelve 50,000-link records would pass the broker's 1 MiB batch limit.
      for (const [i, value] of warmup.entries()) await producer.send({ topic, acks: -1, messages: [{ key: String(WARMUP_BASE + i), value }] });
      const warmDeadline = Date.now() + options.timeoutMs;
      while ((await listKeys(names.prefix)).length < WARMUP) {
        if (Date.now() > warmDeadline) throw new Error('latency: the warm-up records never landed');
        await sleep(20);
      }
      const deadline = epochMs() + options.timeoutMs;
      const poller = pollVisible(client, names.prefix, count, options.pollMs, deadline);
      poller.catch(() => undefined); // awaited below; a failure must not crash the process meanwhile
      const sends: Promise<unknown>[] = [];
      const start = performance.now() + 20;
      for (let i = 0; i < count; i++) {
        const wait = start + (i * 1000) / targetRate - performance.now();
        if (wait > 0) await sleep(wait);
        const at = epochMs();
        produced[i] = at;
        const sent = producer.send({ topic, acks: -1, messages: [{ key: String(BASE + i), value: values[i] ?? null, timestamp: String(Math.floor(at)) }] });
        sent.catch(() => undefined); // awaited below
        sends.push(sent);
      }
      await Promise.all(sends);
      ({ visibleAt, listRttMs } = await poller);
      return epochMs();
    };
    const params = {
      variant: 'service' as const,
      env: variantEnv(ctx, names, latencyMs),
      n: WARMUP + count,
      links,
      ends: {},
      concurrency: options.concurrency,
    };
    const service = await runVariant(params, options.timeoutMs * 2 + 60_000, drive);

    const keys = await listKeys(names.prefix);
    if (keys.length !== WARMUP + count) throw new Error(`latency: ${keys.length} objects, expected ${WARMUP + count}`);
    const ends = await topicEnds(admin, topic);
    if (!(await committedAll(admin, names.group, topic, ends))) throw new Error('latency: the service stopped with offsets not committed');
    if (recordCount(await topicEnds(admin, names.dlqTopic)) !== 0) throw new Error('latency: records in the DLQ topic');

    const latenciesMs = visibleAt.map((v, i) => v - (produced[i] ?? Number.NaN));
    const sorted = [...latenciesMs].sort((a, b) => a - b);
    const span = ((produced[count - 1] ?? 0) - (produced[0] ?? 0)) / 1000;
    return {
      links,
      latencyMs,
      drainRate,
      targetRate,
      achievedRate: span > 0 ? (count - 1) / span : Number.NaN,
      records: count,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      pollMs: options.pollMs,
      listRttMs,
      latenciesMs,
      service,
    };
  } finally {
    client.destroy();
    await producer.disconnect();
    if (!options.keep) {
      await deletePrefix(names.prefix).catch(() => undefined);
      await deleteGroup(admin, names.group);
      await admin.deleteTopics({ topics: [topic, names.dlqTopic] }).catch(() => undefined);
    }
  }
}
