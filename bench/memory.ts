/**
 * Peak memory of the real service while it drains maximum-size snapshots (issue 8, item 7). A
 * benchmark, not a timed test: it reports numbers and PASS/FAIL against a target, nothing asserts.
 *
 *   1. A fresh topic (P partitions, max.message.bytes raised on that topic only) gets N snapshots of
 *      L links, encoded by the project's AvroEncoder (registry + Confluent framing), one record per
 *      produce request, as a live upstream sends them.
 *   2. `node src/cli.ts consume` runs as its own process with every setting at its default except
 *      the names (topic, DLQ topic, group, prefix) and HTTP_PORT=0. Its memory is read from
 *      /proc/<pid>/status every 200 ms (VmRSS), and the kernel's own peak (VmHWM) is read once all
 *      is drained, so the peak is exact, not sampled. A one-line probe (`--import data:…`) writes
 *      process.memoryUsage() to stderr every 200 ms, to tell V8 heap from Buffers (external).
 *   3. Drained = the service's /metrics shows N objects created and the group's committed offsets
 *      equal the topic's end offsets. Then it is stopped (SIGTERM), the objects are counted, and
 *      topics, group and objects are deleted (the registry subject stays).
 *
 *   node bench/memory.ts [--links 200000] [--snapshots 200] [--partitions 6]
 *                        [--target-mib 512 (400 with --links 50000)] [--timeout-s 300] [--keep]
 *                        [--env NAME=VALUE …]
 *
 * `--env` is for experiments only (e.g. `--env MAX_PROCESS_INFLIGHT_BYTES=67108864` or
 * `--env NODE_OPTIONS=--max-old-space-size=256`): it is added to the service's environment and
 * reported as `overrides`, so such a run is never mistaken for one with the defaults.
 *
 * Prints one JSON line (stdout) and writes bench/results/<time>-memory.json with every sample.
 * Exit code 0 when the peak is under the target, 1 when it is not or the run failed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../src/codec.ts';
import { loadConfig } from '../src/config.ts';
import type { Snapshot } from '../src/snapshot.ts';
import { createKafka, createProducer } from '../src/source/kafka.ts';
import { baseTime, createTopicsReady, deletePrefix, listKeys, NODE, ROOT, silent, uniqueName, withAdmin } from '../test/support/stack.ts';
import { fmt, machineInfo, writeResults } from './common.ts';

const { values: args } = parseArgs({
  options: {
    links: { type: 'string', default: '200000' },
    snapshots: { type: 'string', default: '200' },
    partitions: { type: 'string', default: '6' },
    'target-mib': { type: 'string' },
    'timeout-s': { type: 'string', default: '300' },
    keep: { type: 'boolean', default: false },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const LINKS = Number(args.links);
const N = Number(args.snapshots);
const PARTITIONS = Number(args.partitions);
const TARGET_MIB = Number(args['target-mib'] ?? (LINKS <= 50_000 ? 400 : 512));
const TIMEOUT_MS = Number(args['timeout-s']) * 1000;
for (const [name, v] of Object.entries({ LINKS, N, PARTITIONS, TARGET_MIB, TIMEOUT_MS })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
}
const OVERRIDES: Record<string, string> = Object.fromEntries(
  args.env.map((kv) => {
    const at = kv.indexOf('=');
    if (at < 1) throw new Error(`--env ${kv}: expected NAME=VALUE`);
    return [kv.slice(0, at), kv.slice(at + 1)];
  }),
);

const MiB = 2 ** 20;
const SAMPLE_MS = 200;
const DEFAULTS = loadConfig({});
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Snapshot i of the run, the same shape as test/support/stack.ts `snapshots(n, base, links)[i]`, built one at a time. */
function snapshotAt(i: number): Snapshot {
  return {
    last_modified: baseTime() + i,
    tow_and_go: Array.from({ length: LINKS }, (_, j) => ({ link_id: 17_800_000 + i * 10 + j, segment_id: j % 2 === 0 ? 457_000_000 + j : null })),
  };
}

/** Only the names differ from the defaults; everything else (budgets, concurrency, log level) is as shipped. */
function benchEnv(): Record<string, string> {
  const topic = uniqueName(`bench-memory-${LINKS}`);
  return { KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: `${topic}.dlq`, KAFKA_GROUP_ID: `${topic}-group`, S3_PREFIX: `${topic}/`, HTTP_PORT: '0' };
}

async function createBenchTopics(topic: string, dlqTopic: string): Promise<void> {
  // The records are up to MAX_PAYLOAD_BYTES (4 MiB); the broker's 1 MiB default would refuse them.
  const maxMessageBytes = String(DEFAULTS.MAX_PAYLOAD_BYTES + MiB);
  await withAdmin((admin) =>
    createTopicsReady(admin, [
      { topic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: maxMessageBytes }] },
      { topic: dlqTopic, numPartitions: 1, replicationFactor: 1 },
    ]),
  );
}

/** One record per produce request; the next snapshot is built and encoded while the previous is sent. */
async function publishAll(topic: string): Promise<{ avroBytes: number; seconds: number }> {
  const config = loadConfig({ KAFKA_TOPIC: topic });
  const encoder = new AvroEncoder(createRegistry({ url: config.SCHEMA_REGISTRY_URL, timeoutMs: 10_000 }), loadSnapshotSchema().raw, valueSubject(topic));
  const producer = createProducer(createKafka(config, silent));
  const t0 = performance.now();
  let avroBytes = 0;
  await producer.connect();
  try {
    let sending: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < N; i++) {
      const snapshot = snapshotAt(i);
      const value = await encoder.encode(snapshot);
      avroBytes += value.length;
      await sending;
      sending = producer.send({ topic, acks: -1, messages: [{ key: String(snapshot.last_modified), value }] });
      if ((i + 1) % 50 === 0) log(`published ${i + 1}/${N}`);
    }
    await sending;
  } finally {
    await producer.disconnect();
  }
  return { avroBytes, seconds: (performance.now() - t0) / 1000 };
}

/** Runs inside the service process: its memoryUsage() on stderr every SAMPLE_MS, never keeping it alive. */
const PROBE = `setInterval(() => { const m = process.memoryUsage(); process.stderr.write('@@mem ' + JSON.stringify({ t: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }) + '\\n'); }, ${SAMPLE_MS}).unref();`;

interface ProbeSample {
  readonly t: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

function procStatus(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return undefined;
  }
}

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function committedAll(group: string, topic: string, ends: ReadonlyMap<number, string>): Promise<boolean> {
  return withAdmin(async (admin) => {
    const [g] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const committed = new Map((g?.partitions ?? []).map((p) => [p.partition, p.offset]));
    for (const [partition, high] of ends) if (high !== '0' && committed.get(partition) !== high) return false;
    return true;
  });
}

/** The stack's pids (stack.sh's pid files): a change during the run means someone restarted a service. */
function stackPids(): string {
  return ['kafka', 'registry', 's3proxy']
    .map((svc) => {
      try {
        return readFileSync(`${ROOT}.stack/run/${svc}.pid`, 'utf8').trim();
      } catch {
        return 'none';
      }
    })
    .join(' ');
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(DEFAULTS.SHUTDOWN_TIMEOUT_MS + 10_000, 'timeout' as const, { ref: false })]);
  if (code !== 'timeout') return code;
  child.kill('SIGKILL');
  return exited;
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const env = benchEnv();
  const topic = env.KAFKA_TOPIC ?? '';
  const dlqTopic = env.KAFKA_DLQ_TOPIC ?? '';
  const group = env.KAFKA_GROUP_ID ?? '';
  const prefix = env.S3_PREFIX ?? '';
  const pidsBefore = stackPids();
  log(`memory benchmark: ${N} snapshots × ${LINKS} links, ${PARTITIONS} partitions, topic ${topic}, target < ${TARGET_MIB} MiB`);

  await createBenchTopics(topic, dlqTopic);
  const child: { proc?: ChildProcess } = {};
  const samples: { t: number; rss: number }[] = [];
  const probe: ProbeSample[] = [];
  let output = '';
  try {
    const published = await publishAll(topic);
    log(`published ${N} records, ${fmt(published.avroBytes / MiB)} MiB of Avro, in ${fmt(published.seconds)} s`);
    const ends = new Map((await withAdmin((admin) => admin.fetchTopicOffsets(topic))).map((p) => [p.partition, p.high]));

    const t0 = performance.now();
    const proc = spawn(NODE, ['--import', `data:text/javascript,${encodeURIComponent(PROBE)}`, 'src/cli.ts', 'consume'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ...OVERRIDES },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.proc = proc;
    const pid = proc.pid ?? 0;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    let stderrTail = '';
    proc.stdout?.on('data', (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-200_000);
    });
    proc.stderr?.on('data', (d: Buffer) => {
      const lines = (stderrTail + d.toString('utf8')).split('\n');
      stderrTail = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('@@mem ')) probe.push(JSON.parse(line.slice(6)) as ProbeSample);
        else output = `${output}${line}\n`.slice(-200_000);
      }
    });
    const sampler = setInterval(() => {
      const s = procStatus(pid);
      if (s !== undefined) samples.push({ t: (performance.now() - t0) / 1000, rss: s.rss });
    }, SAMPLE_MS);

    let port: number | undefined;
    let rssAtConsuming: number | undefined;
    let firstObjectAt: number | undefined;
    let created = 0;
    let drainedAt: number | undefined;
    let metricsText = '';
    while (drainedAt === undefined) {
      if (proc.exitCode !== null)
        throw new Error(`the service exited with ${proc.exitCode} after ${fmt((performance.now() - t0) / 1000)} s:\n${output.slice(-4000)}`);
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`not drained after ${TIMEOUT_MS / 1000} s (${created}/${N} created)`);
      if (port === undefined) {
        const m = /"httpPort":(\d+)/.exec(output);
        if (m?.[1] !== undefined) {
          port = Number(m[1]);
          rssAtConsuming = procStatus(pid)?.rss;
        }
      } else {
        metricsText = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })
          .then((r) => r.text())
          .catch(() => metricsText);
        created = metric(metricsText, 'tow_and_go_records_total', '{outcome="created"}');
        if (created > 0) firstObjectAt ??= performance.now();
        if (created >= N && (await committedAll(group, topic, ends))) drainedAt = performance.now();
      }
      await sleep(SAMPLE_MS);
    }
    const peak = procStatus(pid);
    clearInterval(sampler);
    const stopT0 = performance.now();
    const exitCode = await stopChild(proc, exited);
    log(`drained in ${fmt((drainedAt - t0) / 1000)} s; the service stopped (exit ${exitCode}) in ${fmt((performance.now() - stopT0) / 1000)} s`);

    const keys = await listKeys(prefix);
    const totalRecords = metric(metricsText, 'tow_and_go_records_total', '{outcome="created"}');
    const deadLettered = metric(metricsText, 'tow_and_go_records_total', '{outcome="dead_lettered"}');
    if (keys.length !== N || totalRecords !== N)
      throw new Error(`expected ${N} objects, found ${keys.length} (metrics: ${totalRecords} created, ${deadLettered} dead-lettered)`);
    const bodyBytes = metric(metricsText, 'tow_and_go_s3_written_bytes_total');

    const seconds = (drainedAt - t0) / 1000;
    const firstObjectSeconds = ((firstObjectAt ?? drainedAt) - t0) / 1000;
    const peakRss = peak?.hwm ?? Math.max(...samples.map((s) => s.rss));
    const atPeak = probe.reduce<ProbeSample | undefined>((best, s) => (best === undefined || s.rss > best.rss ? s : best), undefined);
    const mib = (x: number | undefined) => (x === undefined ? null : Number(fmt(x / MiB)));
    const maxOf = (k: keyof ProbeSample) => mib(Math.max(...probe.map((s) => s[k])));
    const pidsAfter = stackPids();
    const result = {
      benchmark: 'memory',
      command: `node bench/memory.ts ${process.argv.slice(2).join(' ')}`.trim(),
      node: process.version,
      cpus: machineInfo().cpus,
      loadavg: machineInfo().loadavgAtStart,
      snapshots: N,
      links: LINKS,
      partitions: PARTITIONS,
      overrides: OVERRIDES,
      avroMiBPerSnapshot: mib(published.avroBytes / N),
      bodyMiBPerSnapshot: mib(bodyBytes / N),
      serviceDefaults: {
        INFLIGHT_PER_PARTITION: DEFAULTS.INFLIGHT_PER_PARTITION,
        PARTITIONS_CONCURRENTLY: DEFAULTS.PARTITIONS_CONCURRENTLY,
        MAX_INFLIGHT_BYTES: DEFAULTS.MAX_INFLIGHT_BYTES,
        MAX_PROCESS_INFLIGHT_BYTES: DEFAULTS.MAX_PROCESS_INFLIGHT_BYTES,
      },
      publishSeconds: Number(fmt(published.seconds)),
      seconds: Number(fmt(seconds)),
      firstObjectSeconds: Number(fmt(firstObjectSeconds)),
      objectsPerSecond: Number(fmt(N / seconds)),
      objectsPerSecondSteady: Number(fmt((N - 1) / (seconds - firstObjectSeconds))),
      peakRssMiB: mib(peakRss),
      maxSampledRssMiB: mib(Math.max(...samples.map((s) => s.rss))),
      rssWhenConsumingMiB: mib(rssAtConsuming),
      atPeakRss: atPeak === undefined ? null : { heapUsedMiB: mib(atPeak.heapUsed), heapTotalMiB: mib(atPeak.heapTotal), externalMiB: mib(atPeak.external) },
      maxHeapUsedMiB: maxOf('heapUsed'),
      maxHeapTotalMiB: maxOf('heapTotal'),
      maxExternalMiB: maxOf('external'),
      targetMiB: TARGET_MIB,
      pass: peakRss < TARGET_MIB * MiB,
      serviceExitCode: exitCode,
      stackRestarted: pidsAfter !== pidsBefore,
    };
    const file = writeResults('memory', startedAt, { ...result, machine: machineInfo(), rssSamples: samples, probeSamples: probe });
    log(`results: ${file}`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.pass ? 0 : 1;
  } finally {
    if (child.proc !== undefined && child.proc.exitCode === null) child.proc.kill('SIGKILL');
    if (!args.keep) {
      await deletePrefix(prefix).catch((e: unknown) => log(`cleanup of s3 ${prefix} failed: ${String(e)}`));
      await withAdmin(async (admin) => {
        await admin.deleteTopics({ topics: [topic, dlqTopic] });
        await admin.deleteGroups([group]).catch(() => undefined);
      }).catch((e: unknown) => log(`cleanup of ${topic} failed: ${String(e)}`));
      log('cleaned up');
    }
  }
}

process.exitCode = await main();
