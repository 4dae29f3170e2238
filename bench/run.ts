/**
 * End-to-end benchmark of the sink on the real local stack (see bench/README.md):
 *
 *   node bench/run.ts [--sizes 3,1000,50000] [--latencies 0,30] [--rounds 3] [--snapshots-1000 600 …]
 *   node bench/run.ts --quick          # the CI gate: 1,000 links, 0 ms, 3 rounds, exit 1 on a big regression
 *
 * Each size's snapshots are produced once, into one topic, before anything is timed. Then, round by
 * round, every cell (size × added S3 latency) runs every variant (service, naive, consume-only,
 * raw-put), each in a child process of its own (bench/e2e/variant.ts) with a fresh consumer group
 * and S3 prefix, in an order rotated per round. After the rounds, the service's latency at half
 * its drain rate is measured per cell. Results: stdout, bench/results/<time>-e2e.json, and (full
 * runs) bench/RESULTS.md with bench/results-chart.svg.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { objectBody } from '../src/snapshot.ts';
import { filterKnownWarnings } from '../src/warnings.ts';
import { baseTime, kafkaClient, snapshots } from '../test/support/stack.ts';
import { BENCH_DIR, fmt, machineInfo, writeResults } from './common.ts';
import { renderChart } from './e2e/chart.ts';
import { startLatencyProxy } from './e2e/child.ts';
import { createTopics, produceSnapshots, recordCount, topicEnds } from './e2e/kafka.ts';
import { type LatencyResult, measureLatency } from './e2e/latency.ts';
import { renderMarkdown } from './e2e/markdown.ts';
import { type Context, runCellRound, type Sample, type SizeTopic } from './e2e/matrix.ts';
import { parseOptions } from './e2e/options.ts';
import { aggregate, type CellStats, latencyLabel, links, range } from './e2e/report.ts';
import { BASE, snapshotAt } from './e2e/snapshots.ts';
import { guarded, waitForStack } from './e2e/stack-guard.ts';

const S3_PORT = 9000;
const log = (line: string) => process.stderr.write(`${line}\n`);

/** The children build snapshots themselves; they must be the ones test/support/stack.ts builds. */
function checkSameAsTestSupport(): void {
  const expected = JSON.stringify(snapshots(3, baseTime(), 7));
  const ours = JSON.stringify([0, 1, 2].map((i) => snapshotAt(i, 7)));
  if (BASE !== baseTime() || ours !== expected) throw new Error('bench/e2e/snapshots.ts no longer matches test/support/stack.ts snapshots()');
}

async function produceSizes(ctx: Context): Promise<SizeTopic[]> {
  const topics: SizeTopic[] = [];
  for (const size of ctx.options.sizes) {
    const n = ctx.options.counts.get(size) ?? 0;
    const topic = `bench-e2e-${ctx.runId}-${size}`;
    const dlqTopic = `${topic}.dlq`;
    await createTopics(ctx.admin, topic, dlqTopic, ctx.options.partitions);
    const t0 = performance.now();
    const { avroBytes } = await produceSnapshots(topic, n, size);
    const ends = await topicEnds(ctx.admin, topic);
    if (recordCount(ends) !== n) throw new Error(`${topic}: ${recordCount(ends)} records, expected ${n}`);
    const jsonBytes = objectBody(snapshotAt(0, size)).length * n;
    log(`produced ${n} × ${links(size)} to ${topic} in ${fmt((performance.now() - t0) / 1000)} s (${fmt(avroBytes / 2 ** 20)} MiB Avro)`);
    topics.push({ links: size, n, topic, dlqTopic, ends, avroBytes, jsonBytes });
  }
  return topics;
}

async function throughputRounds(ctx: Context, topics: readonly SizeTopic[], reruns: string[]): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let round = 0; round < ctx.options.rounds; round++) {
    for (const t of topics) {
      for (const latencyMs of ctx.options.latencies) {
        const what = `round ${round + 1}/${ctx.options.rounds}, ${links(t.links)}, S3 ${latencyLabel(latencyMs)}`;
        log(what);
        const { value, retried } = await guarded(what, ctx.options.roundRetries, log, () => runCellRound(ctx, t, latencyMs, round));
        samples.push(...value);
        reruns.push(...retried);
      }
    }
  }
  return samples;
}

async function latencyPhase(ctx: Context, topics: readonly SizeTopic[], cells: readonly CellStats[], reruns: string[]): Promise<LatencyResult[]> {
  const results: LatencyResult[] = [];
  for (const t of topics) {
    for (const latencyMs of ctx.options.latencies) {
      const rate = cells.find((c) => c.links === t.links && c.latencyMs === latencyMs)?.variants.service?.objectsPerSecond.median;
      if (rate === undefined || !Number.isFinite(rate)) continue;
      const count = Math.min(ctx.options.latencyRecords, t.n, Math.max(10, Math.round((rate / 2) * ctx.options.latencySeconds)));
      const what = `latency at half load, ${links(t.links)}, S3 ${latencyLabel(latencyMs)}: ${count} records at ${fmt(rate / 2)}/s`;
      log(what);
      const { value, retried } = await guarded(what, ctx.options.roundRetries, log, () => measureLatency(ctx, t.links, latencyMs, rate, count));
      log(`  p50 ${fmt(value.p50Ms)} ms  p99 ${fmt(value.p99Ms)} ms  (achieved ${fmt(value.achievedRate)}/s, list round trip ${fmt(value.listRttMs)} ms)`);
      results.push(value);
      reruns.push(...retried);
    }
  }
  return results;
}

async function main(): Promise<number> {
  filterKnownWarnings();
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const t0 = performance.now();
  const machine = machineInfo();
  checkSameAsTestSupport();
  await waitForStack(log);
  const admin = kafkaClient().admin();
  await admin.connect();
  const proxies = new Map<number, Awaited<ReturnType<typeof startLatencyProxy>>>();
  const proxyUrls = new Map<number, string>();
  const ctx: Context = { options, admin, runId: `${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`, proxies: proxyUrls, log };
  let topics: SizeTopic[] = [];
  const reruns: string[] = [];
  let samples: Sample[];
  let cells: CellStats[];
  let latency: LatencyResult[] = [];
  try {
    for (const ms of options.latencies.filter((l) => l > 0)) {
      const proxy = await startLatencyProxy(S3_PORT, ms);
      proxies.set(ms, proxy);
      proxyUrls.set(ms, proxy.url);
    }
    log(
      `tow-and-go e2e benchmark: sizes ${options.sizes.join(', ')} links, S3 +${options.latencies.join('/+')} ms, ${options.rounds} round(s), variants ${options.variants.join(', ')}, ${options.partitions} partitions, ${options.concurrency} PUTs in flight`,
    );
    topics = await produceSizes(ctx);
    samples = await throughputRounds(ctx, topics, reruns);
    cells = aggregate(samples, options.sizes, options.latencies);
    if (options.latencyPhase) latency = await latencyPhase(ctx, topics, cells, reruns);
  } finally {
    for (const proxy of proxies.values()) await proxy.close();
    if (!options.keep && topics.length > 0) {
      await admin
        .deleteTopics({ topics: topics.flatMap((t) => [t.topic, t.dlqTopic]) })
        .catch((error: unknown) => log(`could not delete topics: ${String(error)}`));
    }
    await admin.disconnect();
  }

  const wallSeconds = (performance.now() - t0) / 1000;
  const command = `node bench/run.ts ${options.argv.join(' ')}`.trim();
  const resultsFile = writeResults('e2e', startedAt, {
    benchmark: 'e2e',
    startedAt: startedAt.toISOString(),
    command,
    wallSeconds,
    machine,
    options: { ...options, counts: Object.fromEntries(options.counts) },
    topics,
    reruns,
    cells,
    latency,
    samples,
  });
  const chartFile = options.markdown ? `${BENCH_DIR}results-chart.svg` : undefined;
  const caption = [
    `${command} (${startedAt.toISOString().slice(0, 10)}, node ${process.version}, ${String(machine.cpus)} CPUs): median of ${options.rounds} round(s).`,
    'ceiling = min(consume-only, raw-put) objects/s of each round; its CPU per object = consume-only + raw-put (no decode, validation or JSON).',
  ];
  const markdown = renderMarkdown({ options, machine, command, startedAt, wallSeconds, topics, cells, latency, reruns, resultsFile, chartFile });
  process.stdout.write(`${markdown}\n`);
  if (chartFile !== undefined) {
    writeFileSync(chartFile, renderChart(cells, options.sizes, options.latencies, caption));
    writeFileSync(`${BENCH_DIR}RESULTS.md`, markdown);
    log(`wrote bench/RESULTS.md and bench/results-chart.svg`);
  }
  log(`results: ${resultsFile}; wall time ${fmt(wallSeconds)} s`);

  if (!options.quick) return 0;
  // The CI gate: only a large regression fails it (the machine is shared and noisy).
  const bad = cells.filter((c) => !(c.serviceOverCeiling.median >= 0.5));
  for (const c of bad)
    log(`REGRESSION: service ÷ ceiling = ${range(c.serviceOverCeiling, '×')} at ${links(c.links)}, S3 ${latencyLabel(c.latencyMs)} (gate: 0.5×)`);
  log(bad.length === 0 ? 'quick gate: PASS (service ≥ 0.5 × ceiling)' : 'quick gate: FAIL');
  return bad.length === 0 ? 0 : 1;
}

process.exitCode = await main();
