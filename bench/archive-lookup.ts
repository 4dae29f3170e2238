/**
 * Archive lookups on a filled prefix (issue 12): how long `findAsOf` takes and how many S3 requests
 * it makes, and what `get --latest` costs, with N snapshots in the prefix.
 *
 *   node bench/archive-lookup.ts [--snapshots 100000] [--lookups 200] [--concurrency 64] [--keep]
 *
 * 1. A fresh prefix gets N tiny snapshot objects, one a minute (10-digit keys from 1700000000), put
 *    with `--concurrency` PUTs in flight, and the latest pointer on the last one.
 * 2. Timed, one after another: findAsOf at `--lookups` random times inside the data, 20 before the
 *    first snapshot (the widest search: every window down to MIN_LAST_MODIFIED), getLatestSnapshot
 *    in-process, and `tow-and-go get --latest` as a process (node start-up included).
 * 3. The prefix is deleted by its known keys (no listing), then checked empty.
 *
 * Prints a Markdown table and writes bench/results/<time>-archive-lookup.json. Needs the local
 * stack (`npm run stack:status`); it never starts or stops it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { findAsOf, getLatestSnapshot, LatestPointer } from '../src/archive/index.ts';
import { loadConfig } from '../src/config.ts';
import { s3Settings } from '../src/config-views.ts';
import { createS3Client } from '../src/sink/s3.ts';
import { contentHash, objectBody } from '../src/snapshot.ts';
import { BENCH_DIR, fmt, machineInfo, markdownTable, writeResults } from './common.ts';

const { values } = parseArgs({
  options: {
    snapshots: { type: 'string', default: '100000' },
    lookups: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '64' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(values.snapshots);
const LOOKUPS = Number(values.lookups);
const CONCURRENCY = Number(values.concurrency);
const FIRST = 1_700_000_000;
const CADENCE = 60;
const config = loadConfig({});
const BUCKET = config.S3_BUCKET;
const FLOOR = config.MIN_LAST_MODIFIED;
const prefix = `bench-archive-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}/`;
const at = (i: number) => FIRST + i * CADENCE;

/** A client whose requests are counted (every attempt the SDK sends). */
function countingClient(): { client: S3Client; count: () => number } {
  const client = createS3Client({ ...s3Settings(config), timeoutMs: 60_000 });
  let n = 0;
  client.middlewareStack.add(
    (next) => async (args) => {
      n++;
      return next(args);
    },
    { step: 'finalizeRequest', name: 'benchCount' },
  );
  return { client, count: () => n };
}

async function pool(total: number, inFlight: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, total) }, async () => {
      while (next < total) await work(next++);
    }),
  );
}

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Row {
  readonly what: string;
  readonly n: number;
  readonly ms: number[];
  readonly requests: number[];
}

async function timed(what: string, times: readonly number[], counted: ReturnType<typeof countingClient>, check: (t: number) => Promise<void>): Promise<Row> {
  const ms: number[] = [];
  const requests: number[] = [];
  for (const t of times) {
    const before = counted.count();
    const start = performance.now();
    await check(t);
    ms.push(performance.now() - start);
    requests.push(counted.count() - before);
  }
  return { what, n: times.length, ms, requests };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const writer = countingClient();
  const fillStart = performance.now();
  try {
    await pool(N, CONCURRENCY, async (i) => {
      const body = objectBody({ last_modified: at(i), tow_and_go: [] });
      await writer.client.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `${prefix}${at(i)}.json`,
          Body: body,
          ContentType: 'application/json',
          Metadata: { 'content-sha256': contentHash(body) },
        }),
      );
      if ((i + 1) % 10_000 === 0) process.stderr.write(`filled ${i + 1}/${N}\n`);
    });
    const fillSeconds = (performance.now() - fillStart) / 1000;
    const last = at(N - 1);
    const lastBody = objectBody({ last_modified: last, tow_and_go: [] });
    await new LatestPointer(writer.client, { bucket: BUCKET, prefix }).advance({
      key: `${prefix}${last}.json`,
      last_modified: last,
      content_sha256: contentHash(lastBody),
      links: 0,
      source: { topic: 'bench', partition: 0, offset: String(N - 1) },
    });

    const reader = countingClient();
    const loc = { bucket: BUCKET, prefix };
    const inside = Array.from({ length: LOOKUPS }, () => FIRST + Math.floor(Math.random() * (last - FIRST + 1)));
    const rows: Row[] = [];
    rows.push(
      await timed(`findAsOf, t inside the data (${LOOKUPS} random)`, inside, reader, async (t) => {
        const found = await findAsOf(reader.client, loc, t, { floor: FLOOR });
        const expected = FIRST + Math.floor((t - FIRST) / CADENCE) * CADENCE;
        if (found?.lastModified !== expected) throw new Error(`findAsOf(${t}) = ${found?.lastModified}, expected ${expected}`);
      }),
    );
    const before = Array.from({ length: 20 }, () => FIRST - 1 - Math.floor(Math.random() * 86_400 * 365));
    rows.push(
      await timed('findAsOf, t before the first snapshot (20)', before, reader, async (t) => {
        if ((await findAsOf(reader.client, loc, t, { floor: FLOOR })) !== undefined) throw new Error(`findAsOf(${t}) found something`);
      }),
    );
    rows.push(
      await timed(
        'getLatestSnapshot, in-process (20)',
        Array.from({ length: 20 }, () => 0),
        reader,
        async () => {
          if ((await getLatestSnapshot({ s3: reader.client, bucket: BUCKET, prefix }))?.lastModified !== last) throw new Error('latest is not the last');
        },
      ),
    );
    const cli: number[] = [];
    for (let k = 0; k < 5; k++) {
      const start = performance.now();
      const r = spawnSync(process.execPath, ['src/cli.ts', 'get', '--latest'], {
        cwd: `${BENCH_DIR}..`,
        env: { ...process.env, S3_PREFIX: prefix },
        encoding: 'utf8',
      });
      cli.push(performance.now() - start);
      if (r.status !== 0 || !r.stdout.includes(`"last_modified":${last}`)) throw new Error(`get --latest failed: ${r.stderr}`);
    }
    rows.push({ what: '`tow-and-go get --latest`, a process (5; node start-up included)', n: 5, ms: cli, requests: [] });
    reader.client.destroy();

    const table = markdownTable(
      ['what', 'p50 ms', 'p99 ms', 'requests per lookup (p50 / max)'],
      rows.map((r) => [
        r.what,
        fmt(percentile(r.ms, 50)),
        fmt(percentile(r.ms, 99)),
        r.requests.length === 0 ? '3 (GET pointer, LIST after it, GET object)' : `${percentile(r.requests, 50)} / ${Math.max(...r.requests)}`,
      ]),
    );
    process.stdout.write(
      `${N} snapshots (one a minute), filled in ${fmt(fillSeconds)} s (${fmt(N / fillSeconds)} PUT/s, ${CONCURRENCY} in flight)\n\n${table}\n`,
    );
    const file = writeResults('archive-lookup', startedAt, { machine: machineInfo(), params: { N, LOOKUPS, CONCURRENCY, prefix }, fillSeconds, rows });
    process.stderr.write(`results: ${file}\n`);
  } finally {
    if (!values.keep) await cleanUp(writer.client);
    writer.client.destroy();
  }
}

/** Deletes by the keys it wrote (a listing of 100,000 keys costs minutes on S3Proxy), then checks nothing is left. */
async function cleanUp(client: S3Client): Promise<void> {
  const keys = [...Array.from({ length: N }, (_, i) => `${prefix}${at(i)}.json`), `${prefix}latest.json`, `${prefix}latest.json.lock`];
  await pool(Math.ceil(keys.length / 1000), 4, async (b) => {
    await client.send(
      new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys.slice(b * 1000, (b + 1) * 1000).map((Key) => ({ Key })), Quiet: true } }),
    );
  });
  const left = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, MaxKeys: 10 }));
  process.stderr.write(`deleted ${prefix}${(left.KeyCount ?? 0) === 0 ? '' : ` (left: ${(left.Contents ?? []).map((c) => c.Key).join(', ')})`}\n`);
}

await main();
