/**
 * No idle zombie: when kafkajs stops the consumer for good (here, a ZSTD-compressed batch, which
 * kafkajs 2.2.4 cannot decompress and reports as non-retriable), the process must not keep running
 * with a dead consumer. It logs one fatal line and exits non-zero so its supervisor restarts it,
 * and it commits nothing past what landed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createTopics, offsets, ROOT, spawnConsumer, testEnv, waitFor } from '../support/stack.ts';

/** Produces with Kafka's own console producer, which can compress with ZSTD. */
function produceZstd(topic: string, lines: string[]): void {
  const classpath = readFileSync(`${ROOT}.stack/install/kafka.classpath`, 'utf8').trim();
  const result = spawnSync(
    'java',
    ['-cp', classpath, 'org.apache.kafka.tools.ConsoleProducer', '--bootstrap-server', '127.0.0.1:9092', '--topic', topic, '--compression-codec', 'zstd'],
    { input: `${lines.join('\n')}\n`, encoding: 'utf8', timeout: 60_000 },
  );
  expect(result.status, result.stderr).toBe(0);
}

describe('a consumer that kafkajs stops for good', () => {
  it('exits 1 with one fatal line instead of idling, and commits nothing', async () => {
    const t = testEnv('fatal');
    await createTopics(t, 1);
    const consumer = spawnConsumer(t);
    const port = await consumer.httpPort();
    await waitFor('liveness', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200, 30_000);

    produceZstd(t.topic, ['not a snapshot, and compressed with a codec kafkajs lacks']);

    const code = await Promise.race([consumer.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 90_000))]);
    if (code === 'still running') consumer.child.kill('SIGKILL');
    expect(code).toBe(1);
    const fatal = consumer
      .output()
      .split('\n')
      .filter((l) => l.includes('"level":60'));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toContain('consumer failed for good');
    const { committed } = await offsets(t);
    expect([...committed.values()]).toEqual(['-1']);
  });
});
