/**
 * CPU-only micro-benchmark of the Avro decode step, all variants in one process, interleaved.
 *
 *   (a)  AvroCodec.decode (src/codec.ts): header checks, the cached writer entry for the schema id,
 *        the bounded well-formedness walk (avro-guard), then reader.fromBuffer.
 *   (b)  the library: registry.decode(buffer, { [SchemaType.AVRO]: { readerSchema } }) from
 *        @kafkajs/confluent-schema-registry, which builds a reader type from readerSchema (and
 *        compares it with the writer type) on every call.
 *   (c)  upper bound: avsc type.fromBuffer(body) on the bare Avro body with a prebuilt type: no
 *        header, no lookup, no checks, no promise.
 *   (a1) breakdown row, not a contender: assertWellFormedAvro alone, the part of (a) that (c) skips.
 *
 * (a) and (b) share one registry client against the real registry: the schema is fetched once in
 * the warm-up and comes from the client's cache afterwards, so no HTTP happens while timing.
 * Each variant's iteration count is calibrated in the warm-up to take about --target-ms per round,
 * then fixed; rounds rotate the variant order.
 *
 *   node bench/codec.ts [--rounds 3] [--target-ms 400] [--small-links 3] [--large-links 50000]
 */
import { parseArgs } from 'node:util';
import { type DecodeOptions, SchemaType } from '@kafkajs/confluent-schema-registry';
import { assertWellFormedAvro } from '../src/avro-guard.ts';
import { AvroCodec, AvroEncoder, createRegistry, loadSnapshotSchema } from '../src/codec.ts';
import { loadConfig } from '../src/config.ts';
import type { Snapshot } from '../src/snapshot.ts';
import { fmt, fmtRatio, fmtSummary, machineInfo, markdownTable, rotate, type Summary, summarize, writeResults } from './common.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'target-ms': { type: 'string', default: '400' },
    'small-links': { type: 'string', default: '3' },
    'large-links': { type: 'string', default: '50000' },
  },
});
const ROUNDS = Number(args.rounds);
const TARGET_MS = Number(args['target-ms']);
const HEADER_BYTES = 5;
/** Far above both records: the size check must not reject the large one. */
const MAX_PAYLOAD = 512 * 1024 * 1024;

/** Holds the last decoded value, so no loop can be optimised away. */
let keep: unknown;

type VariantName = 'a_avrocodec' | 'b_library' | 'c_upper_bound' | 'a1_guard_walk';
const VARIANTS: readonly VariantName[] = ['a_avrocodec', 'b_library', 'c_upper_bound', 'a1_guard_walk'];
const LABEL: Record<VariantName, string> = {
  a_avrocodec: '(a) AvroCodec.decode',
  b_library: '(b) registry.decode + readerSchema',
  c_upper_bound: '(c) avsc fromBuffer, prebuilt type (upper bound)',
  a1_guard_walk: '(a1) breakdown: assertWellFormedAvro alone (part of a)',
};

interface Case {
  readonly name: string;
  readonly links: number;
  readonly framed: Buffer;
  readonly body: Buffer;
  readonly iterations: Map<VariantName, number>;
}

function snapshot(links: number): Snapshot {
  return {
    last_modified: 1_684_216_515,
    tow_and_go: Array.from({ length: links }, (_, i) => ({ link_id: 17_800_000 + i, segment_id: i % 7 === 0 ? null : 457_000_000 + i })),
  };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const config = loadConfig({});
  const settings = { url: config.SCHEMA_REGISTRY_URL, timeoutMs: 10_000 };
  const registry = createRegistry(settings);
  const schema = loadSnapshotSchema();
  // As a user of the library passes it: the parsed .avsc JSON.
  const readerSchema = JSON.parse(schema.raw) as NonNullable<NonNullable<DecodeOptions[SchemaType.AVRO]>['readerSchema']>;
  // A fixed subject: re-runs reuse one registration instead of adding subjects to a shared registry.
  const encoder = new AvroEncoder(registry, schema.raw, 'tow-and-go-bench-codec-value');
  const codec = new AvroCodec(settings, schema.type);
  const prebuilt = schema.type;

  const cases: Case[] = [];
  for (const [name, links] of [
    ['small', Number(args['small-links'])],
    ['large', Number(args['large-links'])],
  ] as const) {
    const framed = await encoder.encode(snapshot(links));
    cases.push({ name, links, framed, body: framed.subarray(HEADER_BYTES), iterations: new Map() });
  }

  // (a) and (b) are async APIs, so awaiting them is part of their cost; (c) and (a1) run in plain
  // synchronous loops.
  const once: Record<VariantName, (c: Case) => Promise<unknown>> = {
    a_avrocodec: async (c) => (await codec.decode(c.framed, MAX_PAYLOAD)).value,
    b_library: (c) => registry.decode(c.framed, { [SchemaType.AVRO]: { readerSchema } }),
    c_upper_bound: async (c) => prebuilt.fromBuffer(c.body),
    a1_guard_walk: async (c) => {
      assertWellFormedAvro(prebuilt, c.body);
      return prebuilt.fromBuffer(c.body);
    },
  };
  const timeLoop = async (v: VariantName, c: Case, iterations: number): Promise<number> => {
    const t0 = performance.now();
    if (v === 'c_upper_bound') {
      for (let i = 0; i < iterations; i++) keep = prebuilt.fromBuffer(c.body);
    } else if (v === 'a1_guard_walk') {
      for (let i = 0; i < iterations; i++) assertWellFormedAvro(prebuilt, c.body);
    } else if (v === 'a_avrocodec') {
      for (let i = 0; i < iterations; i++) keep = await codec.decode(c.framed, MAX_PAYLOAD);
    } else {
      for (let i = 0; i < iterations; i++) keep = await registry.decode(c.framed, { [SchemaType.AVRO]: { readerSchema } });
    }
    return performance.now() - t0;
  };

  // Warm-up: fetches the schema (cached from then on), checks that all variants decode the same
  // value, warms the JIT and calibrates each variant's iteration count to about TARGET_MS.
  for (const c of cases) {
    const expected = JSON.stringify(prebuilt.fromBuffer(c.body));
    for (const v of VARIANTS) {
      if (JSON.stringify(await once[v](c)) !== expected) throw new Error(`${v} decoded the ${c.name} record differently`);
      let n = 1;
      let ms = await timeLoop(v, c, n);
      while (ms < TARGET_MS / 4) {
        n *= 2;
        ms = await timeLoop(v, c, n);
      }
      c.iterations.set(v, Math.max(1, Math.round((n * TARGET_MS) / ms)));
    }
  }

  const samples = new Map<string, number[]>();
  const key = (c: string, v: VariantName) => `${c}/${v}`;
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      for (const v of rotate(VARIANTS, round)) {
        const iterations = c.iterations.get(v) ?? 1;
        const ms = await timeLoop(v, c, iterations);
        const list = samples.get(key(c.name, v)) ?? [];
        list.push((iterations * 1000) / ms);
        samples.set(key(c.name, v), list);
      }
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
  }
  if (keep === undefined) throw new Error('nothing was decoded');

  const results = cases.map((c) => {
    const ops = Object.fromEntries(VARIANTS.map((v) => [v, summarize(samples.get(key(c.name, v)) ?? [])])) as Record<VariantName, Summary>;
    const perRound = (num: VariantName, den: VariantName) => {
      const b = ops[den].samples;
      return summarize(ops[num].samples.map((x, i) => x / (b[i] ?? Number.NaN)));
    };
    return {
      case: c.name,
      links: c.links,
      framedBytes: c.framed.length,
      iterationsPerRound: Object.fromEntries(c.iterations),
      opsPerSecond: ops,
      mbPerSecond: Object.fromEntries(VARIANTS.map((v) => [v, summarize(ops[v].samples.map((x) => (x * c.framed.length) / 1e6))])) as Record<
        VariantName,
        Summary
      >,
      ratios: {
        a_over_c: perRound('a_avrocodec', 'c_upper_bound'),
        a_over_b: perRound('a_avrocodec', 'b_library'),
        b_over_c: perRound('b_library', 'c_upper_bound'),
        a1_over_c: perRound('a1_guard_walk', 'c_upper_bound'),
      },
    };
  });

  const command = `node bench/codec.ts ${process.argv.slice(2).join(' ')}`.trim();
  const out: string[] = [];
  out.push(
    `# Avro decode micro-benchmark: ${ROUNDS} rounds, interleaved, ~${TARGET_MS} ms per variant per round; median (min–max, ±half-spread)`,
    '',
    `Command: \`${command}\` — node ${process.version}`,
    '',
  );
  for (const r of results) {
    out.push(`## ${r.case}: ${r.links} links, ${r.framedBytes} bytes framed`, '');
    out.push(
      markdownTable(
        ['variant', 'ops/s', 'MB/s (framed bytes)'],
        VARIANTS.map((v) => [LABEL[v], fmtSummary(r.opsPerSecond[v]), fmt(r.mbPerSecond[v].median)]),
      ),
      '',
    );
    out.push(
      markdownTable(
        ['ratio (per round, median (min–max))', 'value'],
        [
          ['AvroCodec / upper bound', fmtRatio(r.ratios.a_over_c)],
          ['AvroCodec / library', fmtRatio(r.ratios.a_over_b)],
          ['library / upper bound', fmtRatio(r.ratios.b_over_c)],
          ['guard walk alone / upper bound', fmtRatio(r.ratios.a1_over_c)],
        ],
      ),
      '',
    );
  }
  const file = writeResults('codec', startedAt, {
    benchmark: 'codec',
    startedAt: startedAt.toISOString(),
    command,
    machine: machineInfo(),
    parameters: { rounds: ROUNDS, targetMs: TARGET_MS, cases: cases.map((c) => ({ name: c.name, links: c.links, framedBytes: c.framed.length })) },
    results,
  });
  out.push(`Results: ${file}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
