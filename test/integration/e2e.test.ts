/**
 * The spine, end to end on the real stack: publish → Kafka → registry + Avro → zod → S3 → commit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSnapshotSchema } from '../../src/codec.ts';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import type { Snapshot } from '../../src/snapshot.ts';
import { registerSchema } from '../support/interop.ts';
import { landsExactly } from '../support/landing.ts';
import {
  allCommitted,
  baseTime,
  createTopics,
  getObject,
  NODE,
  offsets,
  produceRaw,
  publish,
  ROOT,
  readTopic,
  silent,
  snapshots,
  type TestEnv,
  testEnv,
  waitFor,
} from '../support/stack.ts';
import { wire } from '../support/wire.ts';

/** The seed's example (the upload job's documented input), shipped in avro/examples/. */
const SEED = JSON.parse(readFileSync(new URL('../../avro/examples/seed-snapshot.json', import.meta.url), 'utf8')) as Snapshot;

/** Registers a schema through the registry's REST API, as any Confluent-compatible producer does. */
describe('end to end on the real stack', () => {
  let t: TestEnv;
  let service: RunningService;

  beforeAll(async () => {
    t = testEnv('e2e');
    await createTopics(t, 3);
    service = await startConsumerService(t.config, silent);
  });

  afterAll(async () => {
    await service?.stop('test done');
  });

  it('lands the seed example, an empty snapshot and four 60,000-link snapshots, JSON-equal, and commits to the end', async () => {
    // Four ~600 KB records over 3 partitions: at least two share a partition, over the broker's
    // default 1 MiB per record batch together, so publish must split its sends.
    const bigs: Snapshot[] = [0, 1, 2, 3].map((k) => ({
      last_modified: baseTime() + 100 + k,
      tow_and_go: Array.from({ length: 60_000 }, (_, i) => ({ link_id: 10_000_000 + i + k, segment_id: i % 7 === 0 ? null : 2 ** 40 + i })),
    }));
    const big = bigs[3] as Snapshot;
    const empty: Snapshot = { last_modified: baseTime() + 1, tow_and_go: [] };
    const input = [SEED, empty, ...bigs, ...snapshots(20, baseTime() + 1000)];
    await publish(t, input);

    // Exactly these keys, never a count: a listing can catch S3Proxy's temporary file of a write in
    // progress (<key>-<uuid>) while a real object is still missing.
    await landsExactly(t, input);

    for (const snapshot of [SEED, empty, big]) {
      const object = await getObject(`${t.prefix}${snapshot.last_modified}.json`);
      expect(JSON.parse(object.body)).toEqual(snapshot);
      expect(object.contentType).toBe('application/json');
    }
    const seedObject = await getObject(`${t.prefix}${SEED.last_modified}.json`);
    expect(seedObject.body).toBe(
      '{"last_modified":1684216515,"tow_and_go":[{"link_id":17806054,"segment_id":457160414},{"link_id":17857682,"segment_id":414984019},{"link_id":17857686,"segment_id":null}]}',
    );
    expect(seedObject.metadata['source-topic']).toBe(t.topic);
    expect(Number(seedObject.metadata['source-partition'])).toBeGreaterThanOrEqual(0);
    expect(seedObject.metadata['source-offset']).toMatch(/^\d+$/);
    expect(seedObject.metadata['schema-id']).toMatch(/^\d+$/);
    expect(seedObject.metadata['content-sha256']).toMatch(/^[0-9a-f]{64}$/);

    await waitFor('committed offsets to reach the end offsets', () => allCommitted(t));
    const { committed, end } = await offsets(t);
    expect([...committed.entries()].sort()).toEqual([...end.entries()].sort());
    expect(await readTopic(t.dlqTopic)).toEqual([]);
  });

  it('serves liveness, readiness and metrics over HTTP', async () => {
    const base = `http://127.0.0.1:${service.http.port}`;
    const healthz = await fetch(`${base}/healthz`);
    expect(healthz.status).toBe(200);
    expect(await healthz.json()).toMatchObject({ live: true, ready: true, joined: true, connected: true, stalledPartitions: 0 });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^tow_and_go_records_total\{outcome="created"\} (\d+)$/m);
    expect(Number(/^tow_and_go_records_total\{outcome="created"\} (\d+)$/m.exec(metrics)?.[1])).toBe(service.metrics.records.get({ outcome: 'created' }));
    // The lag gauge is refreshed from the group's committed offsets on a timer (every few seconds).
    const lag = await waitFor(
      'a lag of 0 on all three partitions',
      async () => {
        const lines = (await (await fetch(`${base}/metrics`)).text()).match(/^tow_and_go_consumer_lag_records\{partition="\d"\} \d+$/gm) ?? [];
        return lines.length === 3 && lines.every((l) => l.endsWith(' 0')) ? lines : undefined;
      },
      30_000,
    );
    expect(lag.sort()).toEqual([0, 1, 2].map((p) => `tow_and_go_consumer_lag_records{partition="${p}"} 0`));
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });

  it('decodes records from a third-party Confluent producer, and from an older and a newer compatible schema version', async () => {
    const current = JSON.parse(loadSnapshotSchema().raw) as Record<string, unknown>;
    const currentId = await registerSchema(`${t.topic}-value`, current);
    // An older writer: links had no segment_id yet (the reader fills in its default, null).
    const older = {
      type: 'record',
      name: 'TowAndGoSnapshot',
      namespace: 'com.towandgo.traffic',
      fields: [
        { name: 'last_modified', type: 'long' },
        { name: 'tow_and_go', type: { type: 'array', items: { type: 'record', name: 'TowAndGoLink', fields: [{ name: 'link_id', type: 'long' }] } } },
      ],
    };
    const olderId = await registerSchema(`${t.topic}-legacy-value`, older);
    // A newer writer: one more optional field, which the body must not grow.
    const newer = { ...current, fields: [...(current.fields as unknown[]), { name: 'source', type: ['null', 'string'], default: null }] };
    const newerId = await registerSchema(`${t.topic}-value`, newer);

    const third = { last_modified: baseTime() + 5000, tow_and_go: [{ link_id: 1, segment_id: 2 }] };
    const old = { last_modified: baseTime() + 5001, tow_and_go: [{ link_id: 3 }] };
    const neu = { last_modified: baseTime() + 5002, tow_and_go: [{ link_id: 4, segment_id: null }], source: 'feed-b' };
    await produceRaw(t.topic, [
      { key: String(third.last_modified), value: wire(currentId, avro.Type.forSchema(current as avro.Schema).toBuffer(third)) },
      { key: String(old.last_modified), value: wire(olderId, avro.Type.forSchema(older as avro.Schema).toBuffer(old)) },
      { key: String(neu.last_modified), value: wire(newerId, avro.Type.forSchema(newer as avro.Schema).toBuffer(neu)) },
    ]);

    const bodies = await waitFor('the three objects', async () => {
      const got = await Promise.all([third, old, neu].map((s) => getObject(`${t.prefix}${s.last_modified}.json`).catch(() => undefined)));
      return got.every((g) => g !== undefined) ? got.map((g) => JSON.parse(g?.body ?? 'null') as unknown) : undefined;
    });
    expect(bodies).toEqual([
      third,
      { last_modified: old.last_modified, tow_and_go: [{ link_id: 3, segment_id: null }] },
      { last_modified: neu.last_modified, tow_and_go: [{ link_id: 4, segment_id: null }] },
    ]);
    await waitFor('commits to the end', () => allCommitted(t));
  });

  it('publish refuses invalid input with the line and field, and sends nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tow-and-go-'));
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, `${JSON.stringify(SEED)}\n${JSON.stringify({ last_modified: baseTime(), tow_and_go: [{ link_id: -5, segment_id: null }] })}\n`);
    const before = await offsets(t);
    const result = spawnSync(NODE, ['src/cli.ts', 'publish', file], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...t.env }, encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`${file}:2: invalid snapshot: tow_and_go[0].link_id`);
    const after = await offsets(t);
    expect([...after.end.entries()]).toEqual([...before.end.entries()]);
  });

  it('publish sends a JSON Lines file from stdin, keyed by last_modified', async () => {
    const input = snapshots(3, baseTime() + 7000)
      .map((s) => JSON.stringify(s))
      .join('\n');
    const result = spawnSync(NODE, ['src/cli.ts', 'publish', '-'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...t.env }, input, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^published 3 snapshot\(s\) to it-e2e-\S+ with schema id \d+\n$/);
    const records = await readTopic(t.topic);
    const keys = records.map((r) => r.key);
    expect(keys).toEqual(expect.arrayContaining(['1684223515', '1684223516', '1684223517']));
  });

  it.each([
    ['S3_BUCKET', 'Not_A_Bucket'],
    ['KAFKA_BROKERS', 'no-port'],
    ['HTTP_PORT', 'eighty'],
    ['S3_ON_CONFLICT', 'replace'],
  ])('a bad %s exits 2 with one line naming it', (name, value) => {
    const result = spawnSync(NODE, ['src/cli.ts', 'consume'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', [name]: value }, encoding: 'utf8' });
    expect(result.status).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${name}=`);
  });
});
