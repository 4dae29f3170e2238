/**
 * Every Kafka codec, proven with clients we did not write. Batches compressed by Kafka's Java client
 * and by librdkafka land byte-exact through the real consumer process, which commits to the end and
 * routes nothing to the DLQ. And what `publish --compression` writes, Kafka's own console consumer
 * and kcat (librdkafka) read back byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consumeWithJavaConsole, consumeWithKcat, keyTabValueLines, produceWithJava, produceWithLibrdkafka } from '../support/clients.ts';
import { encodeSnapshots } from '../support/encode.ts';
import { landsExactly } from '../support/landing.ts';
import { CODEC_IDS, dataBatchCodecs } from '../support/segments.ts';
import { allCommitted, baseTime, createTopics, NODE, offsets, ROOT, readTopic, snapshots, spawnConsumer, testEnv, waitFor } from '../support/stack.ts';

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
/** ~40 KB of Avro each: three to a batch span several Snappy (32 KiB) and LZ4 (64 KiB) blocks. */
const LINKS = 4000;

describe.each(CODECS)('%s', (codec) => {
  it('batches from the Kafka Java client and librdkafka land byte-exact, commit to the end, DLQ empty', async () => {
    const t = testEnv(`codec-${codec}`);
    await createTopics(t, 2);
    const fromJava = snapshots(3, baseTime(), LINKS);
    const fromRdkafka = snapshots(3, baseTime() + 100, LINKS);
    const records = await encodeSnapshots(t, [...fromJava, ...fromRdkafka]);
    produceWithJava(
      { topic: t.topic, compression: codec },
      records.slice(0, 3).map((r) => ({ ...r, partition: 0 })),
    );
    produceWithLibrdkafka(
      { topic: t.topic, compression: codec },
      records.slice(3).map((r) => ({ ...r, partition: 1 })),
    );
    // The broker keeps a producer's batches as they came: this is what the consumer will fetch.
    for (const partition of [0, 1]) {
      const codecs = dataBatchCodecs(t.topic, partition);
      expect(codecs.length).toBeGreaterThan(0);
      expect(new Set(codecs)).toEqual(new Set([CODEC_IDS[codec]]));
    }

    const consumer = spawnConsumer(t);
    try {
      await landsExactly(t, [...fromJava, ...fromRdkafka]);
      await waitFor('committed offsets at the end offsets', () => allCommitted(t), 30_000);
      const { committed, end } = await offsets(t);
      expect(committed).toEqual(end);
      expect(await readTopic(t.dlqTopic)).toEqual([]);
    } finally {
      consumer.child.kill('SIGTERM');
    }
    expect(await consumer.exited, consumer.output()).toBe(0);
  });

  it('publish --compression writes batches that Kafka’s console consumer and kcat read back byte-exact', async () => {
    const t = testEnv(`publish-${codec}`);
    await createTopics(t, 1);
    const input = snapshots(3, baseTime() + 200, LINKS);
    const file = join(mkdtempSync(join(tmpdir(), 'tow-and-go-')), 'in.jsonl');
    writeFileSync(file, input.map((s) => JSON.stringify(s)).join('\n'));
    const result = spawnSync(NODE, ['src/cli.ts', 'publish', '--compression', codec, file], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(new Set(dataBatchCodecs(t.topic, 0))).toEqual(new Set([CODEC_IDS[codec]]));

    // The same encoder, schema and subject give the same bytes that publish sent.
    const expected = keyTabValueLines(await encodeSnapshots(t, input));
    expect(consumeWithJavaConsole(t.topic, input.length).equals(expected)).toBe(true);
    expect(consumeWithKcat(t.topic).equals(expected)).toBe(true);
  });
});
