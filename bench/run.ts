/**
 * End-to-end throughput of the sink on the real local stack, three variants side by side in one
 * run, on the same snapshots (fresh topic, group and S3 prefix per variant per round):
 *
 *   upper bound  the service's object bodies written straight to S3 through the service's own S3Sink
 *                (same conditional PUT, MD5 and metadata), with the service's total concurrency
 *                (min(partitions, PARTITIONS_CONCURRENTLY) × INFLIGHT_PER_PARTITION). No Kafka, no
 *                decode, no validation.
 *   naive        what a newcomer writes: kafkajs eachMessage, one message at a time,
 *                registry.decode(message.value), validateSnapshot, PutObject, commitOffsets.
 *   service      startConsumerService(config) with its default settings, timed from the call until
 *                every object is written and every offset committed.
 *
 * Rounds are interleaved (the variant order rotates each round); ratios are taken per round and
 * then the median, because on a 2-core shared machine only same-round ratios are comparable.
 * Publishing, topic creation, verification (object count, committed offsets, bytes) and cleanup
 * are outside the timed windows. Before each round the stack is probed; a round during which a
 * service restarted (its pid file changed) or that failed is discarded and rerun.
 *
 *   node bench/run.ts [--snapshots 600] [--links 1000] [--rounds 3] [--partitions 6]
 *                     [--timeout-s 180] [--round-retries 3] [--keep]
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Admin } from 'kafkajs';
import { createRegistry } from '../src/codec.ts';
import { type Config, loadConfig } from '../src/config.ts';
import { s3Settings, startConsumerService } from '../src/main.ts';
import { createS3Client, S3Sink, type SnapshotObject } from '../src/sink/s3.ts';
import { contentHash, objectBody, objectKey, type Snapshot, validateSnapshot } from '../src/snapshot.ts';
import {
  allCommitted,
  baseTime,
  createTopics,
  deletePrefix,
  isolatedEnv,
  kafkaClient,
  listKeys,
  publish,
  ROOT,
  s3,
  silent,
  snapshots,
  type TestEnv,
  uniqueName,
  withAdmin,
} from '../test/support/stack.ts';
import { fmt, fmtRatio, fmtSummary, machineInfo, markdownTable, rotate, type Summary, summarize, writeResults } from './common.ts';

const { values: args } = parseArgs({
  options: {
    snapshots: { type: 'string', default: '600' },
    links: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    partitions: { type: 'string', default: '6' },
    'timeout-s': { type: 'string', default: '180' },
    /** Reruns of a round that failed (e.g. a stack service restarted by someone else). */
    'round-retries': { type: 'string', default: '3' },
    /** Keep topics and objects afterwards (by default they are deleted). */
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(args.snapshots);
const LINKS = Number(args.links);
const ROUNDS = Number(args.rounds);
const PARTITIONS = Number(args.partitions);
const TIMEOUT_MS = Number(args['timeout-s']) * 1000;
const ROUND_RETRIES = Number(args['round-retries']);
for (const [name, v] of Object.entries({ N, LINKS, ROUNDS, PARTITIONS, TIMEOUT_MS })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name.toLowerCase()} must be a positive integer`);
}

const DEFAULTS = loadConfig({});
const SERVICE_CONCURRENCY = Math.min(PARTITIONS, DEFAULTS.PARTITIONS_CONCURRENTLY) * DEFAULTS.INFLIGHT_PER_PARTITION;

type Variant = 'upper_bound' | 'naive' | 'service';
const VARIANTS: readonly Variant[] = ['upper_bound', 'naive', 'service'];
const LABEL: Record<Variant, string> = {
  upper_bound: 'upper bound: S3 PUTs only',
  naive: 'naive: eachMessage, one at a time',
  service: 'service: startConsumerService',
};

interface Measurement {
  readonly variant: Variant;
  readonly round: number;
  readonly objects: number;
  readonly bytes: number;
  /** From start (connect / service start / first PUT) until all written and committed. */
  readonly seconds: number;
  /** From start until the consumer joined its group (0 for the upper bound). */
  readonly joinSeconds: number;
  /** From start until the first object was written. */
  readonly firstObjectSeconds: number;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** A fresh topic, DLQ topic, group and prefix, with every other setting at the service's default. */
function benchEnv(variant: Variant, round: number): TestEnv {
  return isolatedEnv(uniqueName(`bench-${variant.replace('_', '-')}-r${round}`), { LOG_LEVEL: 'silent' });
}

function deadline(what: string, started: number): void {
  if (performance.now() - started > TIMEOUT_MS) throw new Error(`${what}: not done after ${TIMEOUT_MS / 1000} s`);
}

// ---------------------------------------------------------------------------------------------
// 1. Upper bound: the same bodies, straight to S3, with the service's total concurrency.

async function runUpperBound(t: TestEnv, snaps: readonly Snapshot[], round: number): Promise<Measurement> {
  const objects: SnapshotObject[] = snaps.map((s, i) => {
    const body = objectBody(s);
    return { key: objectKey(t.prefix, s), body, sha256: contentHash(body), lineage: { topic: t.topic, partition: 0, offset: String(i), schemaId: 1 } };
  });
  const settings = s3Settings(t.config);
  const sink = new S3Sink(createS3Client(settings), settings);
  let next = 0;
  let firstAt: number | undefined;
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: SERVICE_CONCURRENCY }, async () => {
        for (let o = objects[next++]; o !== undefined; o = objects[next++]) {
          const outcome = await sink.write(o);
          if (outcome !== 'created') throw new Error(`upper bound: ${o.key} was ${outcome}`);
          firstAt ??= performance.now();
        }
      }),
    );
  } finally {
    await sink.close();
  }
  const t1 = performance.now();
  return {
    variant: 'upper_bound',
    round,
    objects: objects.length,
    bytes: objects.reduce((sum, o) => sum + o.body.length, 0),
    seconds: (t1 - t0) / 1000,
    joinSeconds: 0,
    firstObjectSeconds: ((firstAt ?? t1) - t0) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Naive baseline: the straightforward sink a newcomer writes.

async function runNaive(t: TestEnv, round: number): Promise<Measurement> {
  const c: Config = t.config;
  // The same S3 client settings as the service (S3Proxy needs checksums WHEN_REQUIRED); what differs
  // is everything around the client.
  const s3 = createS3Client(s3Settings(c));
  const registry = createRegistry({ url: c.SCHEMA_REGISTRY_URL, timeoutMs: c.SCHEMA_REGISTRY_TIMEOUT_MS });
  const consumer = kafkaClient().consumer({ groupId: t.group });
  const limits = { minLastModified: c.MIN_LAST_MODIFIED, maxFutureSkewSeconds: c.MAX_FUTURE_SKEW_SECONDS, maxLinks: c.MAX_LINKS };
  let done = 0;
  let bytes = 0;
  let joinedAt: number | undefined;
  let firstAt: number | undefined;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joinedAt ??= performance.now();
  });
  const t0 = performance.now();
  try {
    const finished = new Promise<number>((resolve, reject) => {
      consumer
        .connect()
        .then(() => consumer.subscribe({ topic: t.topic, fromBeginning: true }))
        .then(() =>
          consumer.run({
            autoCommit: false,
            eachMessage: async ({ topic, partition, message }) => {
              if (message.value === null) return;
              const decoded = await registry.decode(message.value);
              const snapshot = validateSnapshot(decoded, limits, Math.floor(Date.now() / 1000));
              const body = JSON.stringify(snapshot);
              await s3.send(
                new PutObjectCommand({ Bucket: c.S3_BUCKET, Key: `${c.S3_PREFIX}${snapshot.last_modified}.json`, Body: body, ContentType: 'application/json' }),
              );
              firstAt ??= performance.now();
              await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
              bytes += Buffer.byteLength(body);
              if (++done === N) resolve(performance.now());
            },
          }),
        )
        .catch(reject);
    });
    const timeout = sleep(TIMEOUT_MS, 'timeout' as const, { ref: false });
    const t1 = await Promise.race([finished, timeout]);
    if (t1 === 'timeout') throw new Error(`naive: ${done}/${N} after ${TIMEOUT_MS / 1000} s`);
    return {
      variant: 'naive',
      round,
      objects: done,
      bytes,
      seconds: (t1 - t0) / 1000,
      joinSeconds: ((joinedAt ?? t1) - t0) / 1000,
      firstObjectSeconds: ((firstAt ?? t1) - t0) / 1000,
    };
  } finally {
    await consumer.disconnect().catch(() => undefined);
    s3.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. The service, with its defaults.

async function committedAll(admin: Admin, t: TestEnv, ends: ReadonlyMap<number, string>): Promise<boolean> {
  const [group] = await admin.fetchOffsets({ groupId: t.group, topics: [t.topic] });
  const committed = new Map((group?.partitions ?? []).map((p) => [p.partition, p.offset]));
  for (const [partition, high] of ends) if (high !== '0' && committed.get(partition) !== high) return false;
  return true;
}

async function runService(t: TestEnv, round: number, expectedBytes: number): Promise<Measurement> {
  // The observer is connected before the clock starts; it polls the service's own metrics every few
  // ms (cheap) and only asks Kafka for committed offsets once every record has been written.
  const admin = kafkaClient().admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(t.topic)).map((p) => [p.partition, p.high]));
  let joinedAt: number | undefined;
  let firstAt: number | undefined;
  let failure: unknown;
  const t0 = performance.now();
  const service = await startConsumerService(t.config, silent);
  service.failed.then((error) => {
    failure = error ?? new Error('service failed');
  });
  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      const now = performance.now();
      if (joinedAt === undefined && service.metrics.groupJoins.total() > 0) joinedAt = now;
      const records = service.metrics.records.total();
      if (firstAt === undefined && records > 0) firstAt = now;
      if (records >= N && (await committedAll(admin, t, ends))) break;
      deadline(`service (${records}/${N} records)`, t0);
      await sleep(records >= N ? 10 : 2);
    }
    const t1 = performance.now();
    const created = service.metrics.records.get({ outcome: 'created' });
    if (created !== N) throw new Error(`service: ${created} created of ${N} (metrics: ${service.metrics.render()})`);
    return {
      variant: 'service',
      round,
      objects: created,
      bytes: service.metrics.bytesWritten.total() || expectedBytes,
      seconds: (t1 - t0) / 1000,
      joinSeconds: ((joinedAt ?? t1) - t0) / 1000,
      firstObjectSeconds: ((firstAt ?? t1) - t0) / 1000,
    };
  } finally {
    await service.stop('benchmark done');
    await admin.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------

async function verify(m: Measurement, t: TestEnv): Promise<void> {
  const keys = await listKeys(t.prefix);
  if (keys.length !== N) throw new Error(`${m.variant}: ${keys.length} objects under ${t.prefix}, expected ${N}`);
  if (m.variant !== 'upper_bound' && !(await allCommitted(t))) throw new Error(`${m.variant}: offsets of ${t.topic} not all committed`);
}

/** What a failed cleanup left behind (the stack was down); retried once at the end. */
const leftovers: { variant: Variant; t: TestEnv }[] = [];

async function cleanup(envs: readonly { variant: Variant; t: TestEnv }[], final = false): Promise<void> {
  if (args.keep) return;
  for (const { variant, t } of envs) {
    try {
      await deletePrefix(t.prefix);
      if (variant !== 'upper_bound') {
        await withAdmin(async (admin) => {
          await admin.deleteTopics({ topics: [t.topic, t.dlqTopic] });
          await admin.deleteGroups([t.group]).catch(() => undefined);
        });
      }
    } catch (error) {
      if (final) log(`cleanup of ${t.topic} failed, left behind: ${String(error)}`);
      else leftovers.push({ variant, t });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The stack is shared: other engineers restart services (and inject S3 latency) while we run.

/** The pids of the stack's services, from stack.sh's own pid files; a change means a restart. */
function stackPids(): string {
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
async function waitForStack(): Promise<void> {
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
    await sleep(good > 0 ? 300 : 2000);
  }
}

async function runRound(round: number, snaps: readonly Snapshot[]): Promise<Measurement[]> {
  const envs = VARIANTS.map((variant) => ({ variant, t: benchEnv(variant, round) }));
  const env = (v: Variant) => envs.find((e) => e.variant === v)?.t ?? benchEnv(v, round);
  try {
    // Setup, untimed: topics and the same snapshots published to each variant's topic.
    for (const { variant, t } of envs) {
      if (variant === 'upper_bound') continue;
      await createTopics(t, PARTITIONS);
      await publish(t, snaps);
    }
    const expectedBytes = snaps.reduce((sum, s) => sum + objectBody(s).length, 0);
    const out: Measurement[] = [];
    for (const variant of rotate(VARIANTS, round)) {
      const t = env(variant);
      const m =
        variant === 'upper_bound'
          ? await runUpperBound(t, snaps, round)
          : variant === 'naive'
            ? await runNaive(t, round)
            : await runService(t, round, expectedBytes);
      await verify(m, t);
      if (m.bytes !== expectedBytes) throw new Error(`${variant}: wrote ${m.bytes} bytes, expected ${expectedBytes}`);
      log(
        `round ${round + 1}/${ROUNDS} ${variant.padEnd(11)} ${fmt(m.seconds)} s  ${fmt(m.objects / m.seconds)} objects/s  (joined ${fmt(m.joinSeconds)} s, first object ${fmt(m.firstObjectSeconds)} s)`,
      );
      out.push(m);
    }
    return out;
  } finally {
    await cleanup(envs);
  }
}

function perRoundRatio(ms: readonly Measurement[], num: Variant, den: Variant, rate: (m: Measurement) => number): Summary {
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const a = ms.find((m) => m.round === round && m.variant === num);
    const b = ms.find((m) => m.round === round && m.variant === den);
    if (a !== undefined && b !== undefined) ratios.push(rate(a) / rate(b));
  }
  return summarize(ratios);
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const snaps = snapshots(N, baseTime(), LINKS);
  const bodyBytes = snaps.reduce((sum, s) => sum + objectBody(s).length, 0);
  log(
    `tow-and-go sink benchmark: ${N} snapshots × ${LINKS} links (${fmt(bodyBytes / N / 1024)} KiB JSON each), ${PARTITIONS} partitions, ${ROUNDS} rounds, concurrency ${SERVICE_CONCURRENCY}`,
  );
  const measurements: Measurement[] = [];
  const retried: { round: number; error: string }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let attempt = 0; ; attempt++) {
      try {
        await waitForStack();
        const pidsBefore = stackPids();
        const ms = await runRound(round, snaps);
        const pidsAfter = stackPids();
        if (pidsAfter !== pidsBefore) throw new Error(`a stack service restarted during the round (${pidsBefore} → ${pidsAfter}); its numbers are discarded`);
        measurements.push(...ms);
        break;
      } catch (error) {
        if (attempt >= ROUND_RETRIES) throw error;
        retried.push({ round, error: String(error) });
        log(`round ${round + 1} failed: ${String(error)}`);
        log('a stack service was probably restarted by someone else; waiting for the stack, then rerunning the round');
        await sleep(5000);
      }
    }
  }

  if (leftovers.length > 0) {
    await waitForStack().catch(() => undefined);
    await cleanup(leftovers, true);
  }

  const e2e = (m: Measurement) => m.objects / m.seconds;
  // Steady state: from the first object written to the end, so start-up (connect, join, first fetch,
  // schema lookup, first S3 connections) is left out. N - 1 objects land in that window.
  const steady = (m: Measurement) => (m.objects - 1) / (m.seconds - m.firstObjectSeconds);
  const of = (v: Variant) => measurements.filter((m) => m.variant === v);
  const stats = Object.fromEntries(
    VARIANTS.map((v) => [
      v,
      {
        objectsPerSecond: summarize(of(v).map(e2e)),
        bytesPerSecond: summarize(of(v).map((m) => m.bytes / m.seconds)),
        seconds: summarize(of(v).map((m) => m.seconds)),
        joinSeconds: summarize(of(v).map((m) => m.joinSeconds)),
        firstObjectSeconds: summarize(of(v).map((m) => m.firstObjectSeconds)),
        objectsPerSecondSteady: summarize(of(v).map(steady)),
      },
    ]),
  ) as Record<Variant, Record<'objectsPerSecond' | 'bytesPerSecond' | 'seconds' | 'joinSeconds' | 'firstObjectSeconds' | 'objectsPerSecondSteady', Summary>>;
  const ratios = {
    service_over_upper_bound: perRoundRatio(measurements, 'service', 'upper_bound', e2e),
    service_over_naive: perRoundRatio(measurements, 'service', 'naive', e2e),
    naive_over_upper_bound: perRoundRatio(measurements, 'naive', 'upper_bound', e2e),
    steady: {
      service_over_upper_bound: perRoundRatio(measurements, 'service', 'upper_bound', steady),
      service_over_naive: perRoundRatio(measurements, 'service', 'naive', steady),
      naive_over_upper_bound: perRoundRatio(measurements, 'naive', 'upper_bound', steady),
    },
  };

  const command = `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim();
  const file = writeResults('', startedAt, {
    benchmark: 'run',
    startedAt: startedAt.toISOString(),
    command,
    machine: machineInfo(),
    parameters: {
      snapshots: N,
      links: LINKS,
      rounds: ROUNDS,
      partitions: PARTITIONS,
      objectBytesTotal: bodyBytes,
      serviceConcurrency: SERVICE_CONCURRENCY,
      serviceDefaults: {
        PARTITIONS_CONCURRENTLY: DEFAULTS.PARTITIONS_CONCURRENTLY,
        INFLIGHT_PER_PARTITION: DEFAULTS.INFLIGHT_PER_PARTITION,
        MAX_INFLIGHT_BYTES: DEFAULTS.MAX_INFLIGHT_BYTES,
      },
    },
    retriedRounds: retried,
    stats,
    ratios,
    measurements,
  });

  const out: string[] = [];
  out.push(
    `# tow-and-go sink: ${N} snapshots × ${LINKS} links (${fmt(bodyBytes / 2 ** 20)} MiB of JSON), ${PARTITIONS} partitions, ${ROUNDS} rounds, median (min–max, ±half-spread)`,
    '',
    `Command: \`${command}\` — node ${process.version}, ${machineInfo().cpus} CPUs, service concurrency ${SERVICE_CONCURRENCY}`,
    '',
    markdownTable(
      [
        'variant',
        'objects/s (start → all committed)',
        'MB/s',
        'seconds',
        'group joined at (s)',
        'first object at (s)',
        'objects/s steady (first object → end)',
      ],
      VARIANTS.map((v) => [
        LABEL[v],
        fmtSummary(stats[v].objectsPerSecond),
        fmt(stats[v].bytesPerSecond.median / 1e6),
        fmt(stats[v].seconds.median),
        v === 'upper_bound' ? '—' : fmt(stats[v].joinSeconds.median),
        fmt(stats[v].firstObjectSeconds.median),
        fmtSummary(stats[v].objectsPerSecondSteady),
      ]),
    ),
    '',
    markdownTable(
      ['ratio (per round, median (min–max))', 'start → all committed', 'steady'],
      [
        ['service / upper bound', fmtRatio(ratios.service_over_upper_bound), fmtRatio(ratios.steady.service_over_upper_bound)],
        ['service / naive', fmtRatio(ratios.service_over_naive), fmtRatio(ratios.steady.service_over_naive)],
        ['naive / upper bound', fmtRatio(ratios.naive_over_upper_bound), fmtRatio(ratios.steady.naive_over_upper_bound)],
      ],
    ),
    '',
    `Results: ${file}`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
