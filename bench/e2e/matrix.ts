/**
 * One round of one cell (snapshot size × S3 latency): every variant, in the round's rotated order,
 * each in its own child process, each with a fresh consumer group and S3 prefix on the size's one
 * topic. Verified after each run (untimed), then its objects and group are deleted.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin } from 'kafkajs';
import { LOCAL_S3_CREDENTIALS } from '../../src/config.ts';
import { deletePrefix, listKeys } from '../../test/support/stack.ts';
import { fmt, rotate } from '../common.ts';
import { runVariant, type VariantChild } from './child.ts';
import { committedAll, deleteGroup, type Ends, recordCount, topicEnds } from './kafka.ts';
import type { Options } from './options.ts';
import { epochMs, type Variant, type VariantParams, type VariantResult } from './protocol.ts';

/** A snapshot size's topic, produced once at start. */
export interface SizeTopic {
  readonly links: number;
  readonly n: number;
  readonly topic: string;
  readonly dlqTopic: string;
  readonly ends: Ends;
  readonly avroBytes: number;
  readonly jsonBytes: number;
}

export interface Context {
  readonly options: Options;
  readonly admin: Admin;
  readonly runId: string;
  /** Proxy URL per added S3 latency (none for 0 ms). */
  readonly proxies: ReadonlyMap<number, string>;
  readonly log: (line: string) => void;
}

export interface Sample extends VariantResult {
  readonly links: number;
  readonly latencyMs: number;
  readonly round: number;
  readonly n: number;
  readonly objectsPerSecond: number;
  readonly cpuMsPerObject: number;
}

/** How often the parent asks for the service's committed offsets: the resolution of its end time. */
export const OFFSET_POLL_MS = 20;

const short = () => randomBytes(3).toString('hex');

/** The settings a variant gets: only the names, HTTP_PORT, LOG_LEVEL and the S3 endpoint differ from the defaults. */
export function variantEnv(ctx: Context, names: { topic: string; dlqTopic: string; group: string; prefix: string }, latencyMs: number): Record<string, string> {
  const proxy = ctx.proxies.get(latencyMs);
  if (latencyMs !== 0 && proxy === undefined) throw new Error(`no latency proxy for +${latencyMs} ms`);
  return {
    KAFKA_TOPIC: names.topic,
    KAFKA_DLQ_TOPIC: names.dlqTopic,
    KAFKA_GROUP_ID: names.group,
    S3_PREFIX: names.prefix,
    HTTP_PORT: '0',
    LOG_LEVEL: 'silent',
    // Behind the proxy the endpoint is not the local one, so the local keys must be given.
    ...(proxy === undefined
      ? {}
      : { S3_ENDPOINT: proxy, S3_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId, S3_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey }),
  };
}

/** The service is done when its group's committed offsets are the end offsets; polled from here. */
export function serviceDone(admin: Admin, group: string, topic: string, ends: Ends, timeoutMs: number) {
  return async (child: VariantChild, startedAt: number): Promise<number> => {
    for (;;) {
      const asked = performance.now();
      if (await committedAll(admin, group, topic, ends)) return epochMs();
      if (!child.alive()) throw new Error('the service child is gone');
      if (epochMs() - startedAt > timeoutMs) throw new Error(`service: offsets not all committed after ${timeoutMs / 1000} s`);
      await sleep(Math.max(0, OFFSET_POLL_MS - (performance.now() - asked)));
    }
  };
}

async function verify(ctx: Context, t: SizeTopic, variant: Variant, result: VariantResult, group: string, prefix: string): Promise<void> {
  const problems: string[] = [];
  if (variant !== 'consume-only') {
    const keys = await listKeys(prefix);
    if (keys.length !== t.n) problems.push(`${keys.length} objects under ${prefix}, expected ${t.n}`);
  }
  if (variant !== 'raw-put' && !(await committedAll(ctx.admin, group, t.topic, t.ends))) problems.push(`offsets of ${t.topic} not all committed by ${group}`);
  if (result.objects !== t.n) problems.push(`it counted ${result.objects} of ${t.n}${variant === 'service' ? ' created' : ''}`);
  if (variant === 'service') {
    const dead = recordCount(await topicEnds(ctx.admin, t.dlqTopic));
    if (dead !== 0) problems.push(`${dead} records in the DLQ topic ${t.dlqTopic}`);
  }
  if (problems.length > 0) throw new Error(`${variant}: ${problems.join('; ')}`);
}

export async function runCellRound(ctx: Context, t: SizeTopic, latencyMs: number, round: number): Promise<Sample[]> {
  const { options } = ctx;
  const samples: Sample[] = [];
  for (const variant of rotate(options.variants, round)) {
    const id = `${variant}-l${latencyMs}-r${round}-${short()}`;
    const group = `${t.topic}-${id}`;
    const prefix = `bench-e2e-${ctx.runId}/${t.links}/${id}/`;
    const params: VariantParams = {
      variant,
      env: variantEnv(ctx, { topic: t.topic, dlqTopic: t.dlqTopic, group, prefix }, latencyMs),
      n: t.n,
      links: t.links,
      ends: t.ends,
      concurrency: options.concurrency,
    };
    try {
      const decide = variant === 'service' ? serviceDone(ctx.admin, group, t.topic, t.ends, options.timeoutMs) : undefined;
      const result = await runVariant(params, options.timeoutMs + 60_000, decide);
      await verify(ctx, t, variant, result, group, prefix);
      const sample: Sample = {
        ...result,
        links: t.links,
        latencyMs,
        round,
        n: t.n,
        objectsPerSecond: t.n / result.seconds,
        cpuMsPerObject: result.cpuMs / t.n,
      };
      ctx.log(
        `  ${variant.padEnd(12)} ${fmt(sample.seconds).padStart(6)} s  ${fmt(sample.objectsPerSecond).padStart(6)} objects/s  ${fmt(sample.cpuMsPerObject).padStart(6)} CPU ms/object  ${fmt(sample.maxRssMiB).padStart(4)} MiB`,
      );
      samples.push(sample);
    } finally {
      if (!options.keep) {
        await deletePrefix(prefix).catch((error: unknown) => ctx.log(`could not delete ${prefix}: ${String(error)}`));
        if (variant !== 'raw-put') await deleteGroup(ctx.admin, group);
      }
    }
  }
  return samples;
}
