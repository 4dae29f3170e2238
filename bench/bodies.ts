/**
 * CPU-only benchmark of the body step (transcode + SHA-256): inlineBodies against SnapshotWorkers
 * with 1 and 2 threads, `--inflight` builds outstanding at a time (the pipeline's window), all
 * variants in one process, interleaved, the order rotated each round.
 *
 * Per variant and round, over the same fixed number of builds:
 * - builds/s: builds / wall time;
 * - main-thread CPU per build: process.threadCpuUsage() (user + system of the calling thread only,
 *   CLOCK_THREAD_CPUTIME), so worker threads do not count. V8's own helper threads (concurrent
 *   GC, compiler) are not in it either, for any variant;
 * - event-loop busy per build: performance.eventLoopUtilization()'s `active` time, i.e. the time
 *   the main thread was not waiting in the poll phase; it also counts time spent in callbacks;
 * - process CPU per build: process.cpuUsage(), every thread: what the hand-off costs in total.
 *
 * Variants `pool N, all` send every record to a worker (minBytes 0); they appear only for sizes
 * under the default 64 KiB threshold, to show what the threshold saves.
 *
 *   node bench/bodies.ts [--rounds 5] [--links 1000,5000,10000,50000] [--inflight 8] [--target-ms 600]
 */
import { parseArgs } from 'node:util';
import { type Framed, loadSnapshotSchema } from '../src/codec.ts';
import type { Snapshot, SnapshotLimits } from '../src/snapshot.ts';
import { type BodyBuilder, inlineBodies } from '../src/snapshot-transcoder.ts';
import { DEFAULT_MIN_WORKER_BYTES, SnapshotWorkers } from '../src/snapshot-workers.ts';
import { fmt, fmtRatio, machineInfo, markdownTable, rotate, type Summary, summarize, writeResults } from './common.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    links: { type: 'string', default: '1000,5000,10000,50000' },
    inflight: { type: 'string', default: '8' },
    'target-ms': { type: 'string', default: '600' },
  },
});
const ROUNDS = Number(args.rounds);
const INFLIGHT = Number(args.inflight);
const TARGET_MS = Number(args['target-ms']);
const NOW = 1_700_000_000;
const LIMITS: SnapshotLimits = { minLastModified: 946_684_800, maxFutureSkewSeconds: 86_400, maxLinks: 200_000 };
/** Distinct records per size, so no variant works on one hot buffer. */
const RECORDS = 16;
const { type } = loadSnapshotSchema();

interface Variant {
  readonly name: string;
  readonly bodies: BodyBuilder;
}

interface Sample {
  readonly buildsPerSecond: number;
  readonly mainCpuMsPerBuild: number;
  readonly loopBusyMsPerBuild: number;
  readonly processCpuMsPerBuild: number;
}

/** Like kafkajs' records: each Avro body is a view into a larger fetch buffer. */
function records(links: number): Framed[] {
  return Array.from({ length: RECORDS }, (_, r) => {
    const snapshot: Snapshot = {
      last_modified: NOW - r,
      tow_and_go: Array.from({ length: links }, (_, j) => ({ link_id: 17_800_000 + r * links + j, segment_id: j % 3 === 0 ? null : 457_000_000 + j })),
    };
    const body = type.toBuffer(snapshot);
    const fetchBuffer = Buffer.concat([Buffer.alloc(64), body, Buffer.alloc(64)]);
    const avro = fetchBuffer.subarray(64, 64 + body.length);
    return { schemaId: 1, plain: true, avro, decode: () => type.fromBuffer(avro) };
  });
}

/** `count` builds, `INFLIGHT` outstanding at a time, as the pipeline's window allows. */
async function drive(bodies: BodyBuilder, framed: readonly Framed[], count: number): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < count) {
      const f = framed[started++ % framed.length] as Framed;
      await bodies.build(f, LIMITS, NOW);
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, lane));
}

async function measure(bodies: BodyBuilder, framed: readonly Framed[], count: number): Promise<Sample> {
  const loop = performance.eventLoopUtilization();
  const thread = process.threadCpuUsage();
  const whole = process.cpuUsage();
  const started = performance.now();
  await drive(bodies, framed, count);
  const wallMs = performance.now() - started;
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  return {
    buildsPerSecond: count / (wallMs / 1000),
    mainCpuMsPerBuild: cpuMs(process.threadCpuUsage(thread)) / count,
    loopBusyMsPerBuild: performance.eventLoopUtilization(loop).active / count,
    processCpuMsPerBuild: cpuMs(process.cpuUsage(whole)) / count,
  };
}

async function benchSize(links: number): Promise<Record<string, unknown>> {
  const framed = records(links);
  const avroBytes = (framed[0] as Framed).avro.length;
  const pools = [
    { name: 'pool 1', pool: new SnapshotWorkers({ workers: 1 }) },
    { name: 'pool 2', pool: new SnapshotWorkers({ workers: 2 }) },
    ...(avroBytes < DEFAULT_MIN_WORKER_BYTES
      ? [
          { name: 'pool 1, all', pool: new SnapshotWorkers({ workers: 1, minBytes: 0 }) },
          { name: 'pool 2, all', pool: new SnapshotWorkers({ workers: 2, minBytes: 0 }) },
        ]
      : []),
  ];
  const variants: Variant[] = [{ name: 'inline', bodies: inlineBodies }, ...pools.map((p) => ({ name: p.name, bodies: p.pool }))];
  try {
    // Warm-up: JIT on every thread, threads started; then calibrate on inline.
    for (const v of variants) await drive(v.bodies, framed, RECORDS * 4);
    const probe = await measure(inlineBodies, framed, RECORDS * 4);
    const count = Math.max(RECORDS, Math.round((TARGET_MS / 1000) * probe.buildsPerSecond));
    const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of rotate(variants, round)) samples.get(v.name)?.push(await measure(v.bodies, framed, count));
    }
    printSize(links, avroBytes, count, variants, samples);
    return { links, avroBytes, builds: count, samples: Object.fromEntries(samples) };
  } finally {
    await Promise.all(pools.map((p) => p.pool.close()));
  }
}

function printSize(links: number, avroBytes: number, count: number, variants: readonly Variant[], samples: Map<string, Sample[]>): void {
  const of = (name: string, pick: (s: Sample) => number): Summary => summarize((samples.get(name) ?? []).map(pick));
  const ratio = (name: string, pick: (s: Sample) => number): Summary => {
    const inline = samples.get('inline') ?? [];
    return summarize((samples.get(name) ?? []).map((s, i) => pick(s) / pick(inline[i] as Sample)));
  };
  const cell = (s: Summary) => `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
  const rows = variants.map((v) => [
    v.name,
    cell(of(v.name, (s) => s.buildsPerSecond)),
    v.name === 'inline' ? '1' : fmtRatio(ratio(v.name, (s) => s.buildsPerSecond)),
    cell(of(v.name, (s) => s.mainCpuMsPerBuild)),
    v.name === 'inline' ? '1' : fmtRatio(ratio(v.name, (s) => s.mainCpuMsPerBuild)),
    cell(of(v.name, (s) => s.loopBusyMsPerBuild)),
    cell(of(v.name, (s) => s.processCpuMsPerBuild)),
  ]);
  process.stdout.write(`\n**${links.toLocaleString('en-US')} links, ${avroBytes.toLocaleString('en-US')} bytes of Avro, ${count} builds per sample**\n\n`);
  const header = ['variant', 'builds/s', '× inline', 'main-thread CPU ms/build', '× inline', 'event loop busy ms/build', 'process CPU ms/build'];
  process.stdout.write(`${markdownTable(header, rows)}\n`);
}

const startedAt = new Date();
const machine = machineInfo();
process.stdout.write(`node ${process.version}, ${String(machine.availableParallelism)} CPUs, load ${JSON.stringify(machine.loadavgAtStart)}\n`);
process.stdout.write(`${ROUNDS} rounds, ${INFLIGHT} builds in flight, median (min–max); ratios per round, then the median\n`);
const sizes = [];
for (const links of args.links.split(',').map(Number)) sizes.push(await benchSize(links));
const file = writeResults('bodies', startedAt, { machine, parameters: { rounds: ROUNDS, inflight: INFLIGHT, targetMs: TARGET_MS }, sizes });
process.stdout.write(`\nresults: ${file}\n`);
