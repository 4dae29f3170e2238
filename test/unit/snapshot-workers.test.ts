/**
 * SnapshotWorkers with real worker threads: byte-identical to inlineBodies (json, SHA-256,
 * last_modified) and throwing exactly what inlineBodies throws, with records framed by the real
 * AvroCodec (a fake registry serves the writer schemas) out of a larger buffer, as kafkajs hands
 * them over. Also: which records stay on the main thread, many builds at once, a dying thread,
 * close(), the worker's import closure, and BODY_WORKERS.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import avro from 'avsc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AvroCodec, type Framed, loadSnapshotSchema } from '../../src/codec.ts';
import { autoBodyWorkers, loadConfig } from '../../src/config.ts';
import { isSinkError } from '../../src/errors.ts';
import type { Snapshot, SnapshotLimits } from '../../src/snapshot.ts';
import { type BuiltBody, inlineBodies } from '../../src/snapshot-transcoder.ts';
import { SnapshotWorkers, type SnapshotWorkersOptions } from '../../src/snapshot-workers.ts';
import { type FakeRegistry, fakeRegistry } from '../support/fake-registry.ts';
import { prng } from '../support/prng.ts';
import { rejectionOf } from '../support/thrown.ts';
import { wire } from '../support/wire.ts';

const NOW = 1_700_000_000;
const LIMITS: SnapshotLimits = { minLastModified: 946_684_800, maxFutureSkewSeconds: 86_400, maxLinks: 200_000 };
const PLAIN_ID = 1;
/** A newer writer schema (one more field): records written with it are not plain. */
const EVOLVED_ID = 2;
const WORKER_URL = new URL('../../src/snapshot-worker.ts', import.meta.url);
const { type, raw } = loadSnapshotSchema();
const evolvedSchema = JSON.parse(raw) as { fields: unknown[] };
evolvedSchema.fields.push({ name: 'source', type: 'string', default: 'feed' });
const evolvedType = avro.Type.forSchema(evolvedSchema as avro.Schema);

let registry: FakeRegistry;
let codec: AvroCodec;
const pools: SnapshotWorkers[] = [];

beforeAll(async () => {
  registry = await fakeRegistry((r) => {
    if (r.path.endsWith(`/ids/${PLAIN_ID}`)) return { status: 200, body: { schema: raw } };
    if (r.path.endsWith(`/ids/${EVOLVED_ID}`)) return { status: 200, body: { schema: JSON.stringify(evolvedSchema) } };
    return { status: 404, body: { error_code: 40403, message: 'not found' } };
  });
  codec = new AvroCodec({ url: registry.url, timeoutMs: 2000 }, type);
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
afterAll(() => registry.close());

function pool(options: Partial<SnapshotWorkersOptions> = {}): SnapshotWorkers {
  const p = new SnapshotWorkers({ workers: 1, ...options });
  pools.push(p);
  return p;
}

function snapshot(links: number, seed = links, lastModified = NOW - seed): Snapshot {
  const random = prng(seed);
  return {
    last_modified: lastModified,
    tow_and_go: Array.from({ length: links }, () => ({
      link_id: 1 + Math.floor(random() * 2 ** 40),
      segment_id: random() < 0.3 ? null : 1 + Math.floor(random() * 2 ** 31),
    })),
  };
}

/** Framed by AvroCodec out of a buffer with other bytes on both sides, as kafkajs' fetch buffer is. */
async function framedIn(body: Buffer, schemaId = PLAIN_ID): Promise<{ framed: Framed; fetchBuffer: Buffer }> {
  const record = wire(schemaId, body);
  const fetchBuffer = Buffer.concat([Buffer.alloc(37, 0xaa), record, Buffer.alloc(11, 0xbb)]);
  const framed = await codec.frame(fetchBuffer.subarray(37, 37 + record.length), 64 * 1024 * 1024);
  return { framed, fetchBuffer };
}

async function expectSameAsInline(built: BuiltBody, framed: Framed): Promise<void> {
  const inline = await inlineBodies.build(framed, LIMITS, NOW);
  expect(built.lastModified).toBe(inline.lastModified);
  expect(built.links).toBe(inline.links);
  expect(built.sha256).toBe(inline.sha256);
  expect(Buffer.isBuffer(built.json)).toBe(true);
  expect(built.json.equals(inline.json)).toBe(true);
}

describe('SnapshotWorkers: the same bodies as inlineBodies', () => {
  it.each([3, 1_000, 50_000])('builds a %i-link snapshot on a worker, byte for byte, and leaves the fetch buffer intact', async (links) => {
    const p = pool({ minBytes: 0 });
    const { framed, fetchBuffer } = await framedIn(type.toBuffer(snapshot(links)));
    const before = Buffer.from(fetchBuffer);
    const built = await p.build(framed, LIMITS, NOW);
    await expectSameAsInline(built, framed);
    expect(fetchBuffer.buffer.byteLength).toBeGreaterThan(0); // not detached
    expect(fetchBuffer.equals(before)).toBe(true);
    expect(p.stats()).toMatchObject({ offloaded: 1, inline: 0, fallbacks: 0 });
  });

  it('builds a valid record of a newer writer schema (not plain) on the main thread, as inlineBodies does', async () => {
    const p = pool({ minBytes: 0 });
    const { framed } = await framedIn(evolvedType.toBuffer({ ...snapshot(20_000), source: 'x' }), EVOLVED_ID);
    expect(framed.plain).toBe(false);
    await expectSameAsInline(await p.build(framed, LIMITS, NOW), framed);
    expect(p.stats()).toMatchObject({ offloaded: 0, inline: 1, threadsStarted: 0 });
  });
});

describe('SnapshotWorkers: the same errors as inlineBodies', () => {
  const big = (change: (s: Snapshot) => void): Buffer => {
    const s = snapshot(50_000);
    change(s);
    return type.toBuffer(s);
  };
  const withLink = (link: { link_id: number; segment_id: number | null }) =>
    big((s) => {
      s.tow_and_go[31_337] = link;
    });
  it.each<[string, () => Buffer, number]>([
    ['link_id 0', () => withLink({ link_id: 0, segment_id: null }), PLAIN_ID],
    ['segment_id 0', () => withLink({ link_id: 5, segment_id: 0 }), PLAIN_ID],
    ['last_modified before MIN_LAST_MODIFIED', () => big((s) => Object.assign(s, { last_modified: 1 })), PLAIN_ID],
    ['last_modified too far in the future', () => big((s) => Object.assign(s, { last_modified: NOW + 86_401 })), PLAIN_ID],
    ['more links than MAX_LINKS', () => type.toBuffer(snapshot(200_001)), PLAIN_ID],
    ['truncated Avro', () => big(() => undefined).subarray(0, 300_000), PLAIN_ID],
    ['trailing bytes', () => Buffer.concat([big(() => undefined), Buffer.from([7])]), PLAIN_ID],
    [
      'a newer writer schema with link_id 0',
      () => evolvedType.toBuffer({ ...snapshot(9_000), tow_and_go: [{ link_id: 0, segment_id: 1 }], source: 'x' }),
      EVOLVED_ID,
    ],
  ])('%s', async (_, body, schemaId) => {
    const p = pool({ minBytes: 0 });
    const { framed } = await framedIn(body(), schemaId);
    const fromPool = await rejectionOf(p.build(framed, LIMITS, NOW));
    const fromInline = await rejectionOf(inlineBodies.build(framed, LIMITS, NOW));
    expect(isSinkError(fromPool)).toBe(true);
    expect(fromPool).toBeInstanceOf((fromInline as Error).constructor);
    expect(fromPool).toMatchObject({ name: (fromInline as Error).name, message: (fromInline as Error).message, code: (fromInline as { code: string }).code });
    expect(p.stats().fallbacks).toBe(framed.plain ? 1 : 0);
  });
});

describe('SnapshotWorkers: scheduling', () => {
  it('keeps small plain records (under minBytes, 64 KiB by default) on the main thread, starting no thread', async () => {
    const p = pool();
    const small = await framedIn(type.toBuffer(snapshot(1_000)));
    expect(small.framed.avro.length).toBeLessThan(64 * 1024);
    await expectSameAsInline(await p.build(small.framed, LIMITS, NOW), small.framed);
    expect(p.stats()).toMatchObject({ inline: 1, offloaded: 0, threadsStarted: 0 });
    const large = await framedIn(type.toBuffer(snapshot(8_000)));
    expect(large.framed.avro.length).toBeGreaterThanOrEqual(64 * 1024);
    await expectSameAsInline(await p.build(large.framed, LIMITS, NOW), large.framed);
    expect(p.stats()).toMatchObject({ inline: 1, offloaded: 1, threadsStarted: 1 });
  });

  it('answers 200 concurrent builds, each with its own body, across both threads', async () => {
    const p = pool({ workers: 2, minBytes: 0 });
    const framed = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => (await framedIn(type.toBuffer(snapshot(i % 7 === 0 ? 20_000 : 1 + ((i * 37) % 3_000), i + 1)))).framed),
    );
    const built = await Promise.all(framed.map((f) => p.build(f, LIMITS, NOW)));
    for (const [i, b] of built.entries()) await expectSameAsInline(b, framed[i] as Framed);
    expect(p.stats()).toMatchObject({ offloaded: 200, threadsStarted: 2, threadsFailed: 0, outstanding: 0 });
  });
});

/**
 * The real worker, whose message handler dies (throws or exits) on a task with nowSeconds === DIE,
 * as it would on a bug in the transcoder: the handler is wrapped before the worker registers it.
 */
const DIE = 4242;
function dyingWorker(how: 'throw' | 'exit'): URL {
  const die = how === 'throw' ? "throw new Error('boom in the worker')" : 'process.exit(3)';
  const wrap = `import { parentPort } from 'node:worker_threads';
const on = parentPort.on.bind(parentPort);
parentPort.on = (event, handler) => on(event, (m) => { if (m.nowSeconds === ${DIE}) ${die}; handler(m); });`;
  // Static imports evaluate in order: the wrapper is in place before the real worker runs.
  return dataUrl(`import ${JSON.stringify(dataUrl(wrap).href)}; import ${JSON.stringify(WORKER_URL.href)};`);
}

function dataUrl(source: string): URL {
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

describe('SnapshotWorkers: a thread that dies', () => {
  it.each<['throw' | 'exit', RegExp]>([
    ['throw', /snapshot worker 0 failed with 3 build\(s\) outstanding: .*boom in the worker/],
    ['exit', /snapshot worker 0 failed with 3 build\(s\) outstanding: exited with code 3/],
  ])('on %s rejects its outstanding builds with a plain Error (a bug, not a SinkError); a fresh thread takes later builds', async (how, message) => {
    const p = pool({ minBytes: 0, entry: dyingWorker(how) });
    const { framed } = await framedIn(type.toBuffer(snapshot(5_000)));
    const lost = [p.build(framed, LIMITS, DIE), p.build(framed, LIMITS, NOW), p.build(framed, LIMITS, NOW)];
    for (const error of await Promise.all(lost.map(rejectionOf))) {
      expect(error).toBeInstanceOf(Error);
      expect(isSinkError(error)).toBe(false);
      expect((error as Error).message).toMatch(message);
    }
    await expectSameAsInline(await p.build(framed, LIMITS, NOW), framed);
    expect(p.stats()).toMatchObject({ threadsStarted: 2, threadsFailed: 1, threadsRunning: 1, outstanding: 0 });
  });
});

describe('SnapshotWorkers: lifetime', () => {
  it('close() terminates every thread, and later builds reject', async () => {
    const p = pool({ workers: 2, minBytes: 0 });
    const { framed } = await framedIn(type.toBuffer(snapshot(3)));
    await Promise.all([p.build(framed, LIMITS, NOW), p.build(framed, LIMITS, NOW)]);
    expect(p.stats().threadsRunning).toBe(2);
    await p.close();
    expect(p.stats()).toMatchObject({ threadsRunning: 0, threadsFailed: 0 });
    expect(await rejectionOf(p.build(framed, LIMITS, NOW))).toMatchObject({ message: expect.stringMatching(/closed/) });
  });

  it.each([
    ['with close()', 'await pool.close();'],
    ['without close(): idle threads are unref()ed', ''],
  ])('lets the process exit %s', (_, closing) => {
    const script = `import { SnapshotWorkers } from ${JSON.stringify(new URL('../../src/snapshot-workers.ts', import.meta.url).href)};
const avro = Buffer.from(${JSON.stringify(type.toBuffer(snapshot(10)).toString('base64'))}, 'base64');
const pool = new SnapshotWorkers({ workers: 2, minBytes: 0 });
const built = await pool.build({ schemaId: 1, plain: true, avro, decode: () => undefined }, ${JSON.stringify(LIMITS)}, ${NOW});
${closing}
process.stdout.write(built.sha256);`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(child.stdout).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('snapshot-worker.ts', () => {
  it('loads only the transcoder, the hash and node built-ins: no zod, avsc or registry client', async () => {
    const source = `import { registerHooks } from 'node:module';
import { parentPort } from 'node:worker_threads';
const loaded = [];
registerHooks({ resolve: (specifier, context, next) => { const r = next(specifier, context); loaded.push(r.url); return r; } });
await import(${JSON.stringify(WORKER_URL.href)});
parentPort.postMessage(loaded);`;
    const worker = new Worker(dataUrl(source));
    const loaded = await new Promise<string[]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    const files = loaded.filter((u) => !u.startsWith('node:')).map((u) => u.slice(u.lastIndexOf('/src/') + 1));
    expect(files.sort()).toEqual(['src/content-hash.ts', 'src/plain-transcoder.ts', 'src/snapshot-worker.ts']);
  });
});

describe('BODY_WORKERS', () => {
  it('auto is one thread per CPU beyond the first, at most 4, and none on one CPU', () => {
    expect([1, 2, 3, 5, 6, 64].map(autoBodyWorkers)).toEqual([0, 1, 2, 4, 4, 4]);
    expect(loadConfig({}).BODY_WORKERS).toBe(autoBodyWorkers(os.availableParallelism()));
  });

  it('takes an integer from 0 (off) to 16', () => {
    expect(loadConfig({ BODY_WORKERS: '0' }).BODY_WORKERS).toBe(0);
    expect(loadConfig({ BODY_WORKERS: '16' }).BODY_WORKERS).toBe(16);
    expect(() => loadConfig({ BODY_WORKERS: '17' })).toThrow(/BODY_WORKERS="17"/);
    expect(() => loadConfig({ BODY_WORKERS: 'many' })).toThrow(/BODY_WORKERS="many": expected auto or an integer from 0 to 16/);
  });
});
