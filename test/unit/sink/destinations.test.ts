import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { contentHash } from '../../../src/content-hash.ts';
import { ConflictError, S3RejectedError, S3UnavailableError } from '../../../src/errors.ts';
import { Metrics } from '../../../src/metrics.ts';
import { type AfterLanding, combined, copyFor, type Destination, DestinationSet, type DestinationStore } from '../../../src/sink/destinations.ts';
import type { Landing, PlanOutcome, SnapshotObject } from '../../../src/sink/s3.ts';

const json = Buffer.from('{"last_modified":1700000000,"tow_and_go":[{"link_id":1,"segment_id":null}]}');
const object: SnapshotObject = {
  key: 'a/1700000000.json',
  body: json,
  sha256: contentHash(json),
  snapshot: { lastModified: 1_700_000_000, links: 1 },
  lineage: { topic: 't', partition: 0, offset: '7', schemaId: 1 },
};

/** The real sink's semantics: first writer wins, same hash is unchanged, a different one conflicts; `down` fails like an unreachable S3. */
class Store implements DestinationStore {
  readonly objects = new Map<string, SnapshotObject>();
  down: 'no' | 'unavailable' | 'no-such-bucket' = 'no';
  async land(o: SnapshotObject): Promise<Landing> {
    if (this.down === 'unavailable') throw new S3UnavailableError('PutObject failed: connect ECONNREFUSED');
    if (this.down === 'no-such-bucket') throw new S3RejectedError('PutObject refused: NoSuchBucket (HTTP 404)');
    const existing = this.objects.get(o.key);
    if (existing === undefined) {
      this.objects.set(o.key, o);
      return { outcome: 'created', etag: `"${o.sha256.slice(0, 8)}"` };
    }
    if (existing.sha256 !== o.sha256) throw new ConflictError(`conflict: ${o.key} already holds a different snapshot`);
    return { outcome: 'unchanged', etag: `"${o.sha256.slice(0, 8)}"` };
  }
  async plan(o: SnapshotObject): Promise<PlanOutcome> {
    const existing = this.objects.get(o.key);
    if (existing === undefined) return 'would_create';
    return existing.sha256 === o.sha256 ? 'unchanged' : 'would_conflict';
  }
  async close(): Promise<void> {}
}

function destination(name: string, prefix = 'a/', compression: 'none' | 'gzip' = 'none'): Destination & { store: Store } {
  return { name, bucket: `bucket-${name}`, prefix, compression, store: new Store() };
}

const builtWith = { prefix: 'a/', compression: 'none' as const };

describe('DestinationSet', () => {
  it('writes every destination under its own prefix and compression, and counts per destination', async () => {
    const metrics = new Metrics();
    const [one, two] = [destination('one'), destination('two', 'b/', 'gzip')];
    const set = new DestinationSet([one, two], { builtWith, metrics });
    await expect(set.write(object)).resolves.toBe('created');
    expect([...one.store.objects.keys()]).toEqual(['a/1700000000.json']);
    const copy = two.store.objects.get('b/1700000000.json');
    expect(copy?.contentEncoding).toBe('gzip');
    expect(gunzipSync(copy?.body ?? Buffer.alloc(0))).toEqual(json);
    expect(copy?.sha256).toBe(object.sha256);
    await expect(set.write(object)).resolves.toBe('unchanged');
    expect(metrics.destinationWrites.get({ destination: 'two', outcome: 'created' })).toBe(1);
    expect(metrics.destinationWrites.get({ destination: 'two', outcome: 'unchanged' })).toBe(1);
  });

  it('a destination down fails the write retryably, and the retry finds the others unchanged (no loss, no rewrite)', async () => {
    const [one, two] = [destination('one'), destination('two', 'b/')];
    const set = new DestinationSet([one, two], { builtWith });
    two.store.down = 'no-such-bucket';
    const failure = await set.write(object).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(S3RejectedError);
    expect((failure as S3RejectedError).retryable).toBe(true);
    expect((failure as Error).message).toMatch(/^destination two: /);
    expect(one.store.objects.size).toBe(1);
    two.store.down = 'no';
    await expect(set.write(object)).resolves.toBe('created');
    expect(two.store.objects.size).toBe(1);
  });

  it('prefers a retryable failure over a conflict elsewhere: the record may still land everywhere', async () => {
    const [one, two] = [destination('one'), destination('two', 'b/')];
    one.store.objects.set(object.key, { ...object, sha256: 'other' });
    two.store.down = 'unavailable';
    const set = new DestinationSet([one, two], { builtWith, metrics: new Metrics() });
    await expect(set.write(object)).rejects.toBeInstanceOf(S3UnavailableError);
    two.store.down = 'no';
    const conflict = await set.write(object).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as Error).message).toMatch(/^destination one: conflict/);
  });

  it('one destination keeps the messages as they were', async () => {
    const one = destination('default');
    one.store.down = 'unavailable';
    await expect(new DestinationSet([one], { builtWith }).write(object)).rejects.toThrow(/^PutObject failed/);
  });

  it('runs the after-landing steps once every destination has it, with every copy, and a failing step fails the write', async () => {
    const seen: string[][] = [];
    let fail = true;
    const step: AfterLanding = {
      afterLanding: async (_o, copies) => {
        seen.push(copies.map((c) => `${c.destination}:${c.bucket}/${c.key}:${c.outcome}:${c.etag}`));
        if (fail) throw new S3UnavailableError('pointer down');
      },
    };
    const [one, two] = [destination('one'), destination('two', 'b/')];
    const set = new DestinationSet([one, two], { builtWith, after: [step] });
    await expect(set.write(object)).rejects.toThrow('pointer down');
    fail = false;
    await expect(set.write(object)).resolves.toBe('unchanged');
    const etag = `"${object.sha256.slice(0, 8)}"`;
    expect(seen).toEqual([
      [`one:bucket-one/a/1700000000.json:created:${etag}`, `two:bucket-two/b/1700000000.json:created:${etag}`],
      [`one:bucket-one/a/1700000000.json:unchanged:${etag}`, `two:bucket-two/b/1700000000.json:unchanged:${etag}`],
    ]);
  });

  it('never runs the after-landing steps when a destination failed', async () => {
    const [one, two] = [destination('one'), destination('two', 'b/')];
    two.store.down = 'unavailable';
    let ran = 0;
    const set = new DestinationSet([one, two], { builtWith, after: [{ afterLanding: async () => void ran++ }] });
    await expect(set.write(object)).rejects.toBeInstanceOf(S3UnavailableError);
    expect(ran).toBe(0);
  });

  it('rethrows a bug from any destination before any SinkError', async () => {
    const [one, two] = [destination('one'), destination('two', 'b/')];
    one.store.down = 'unavailable';
    two.store.land = async () => {
      throw new TypeError('bug');
    };
    await expect(new DestinationSet([one, two], { builtWith }).write(object)).rejects.toBeInstanceOf(TypeError);
  });

  it('plans the worst of every destination', async () => {
    const [one, two] = [destination('one'), destination('two', 'b/')];
    const set = new DestinationSet([one, two], { builtWith });
    await expect(set.plan(object)).resolves.toBe('would_create');
    await set.write(object);
    await expect(set.plan(object)).resolves.toBe('unchanged');
    two.store.objects.set('b/1700000000.json', { ...object, sha256: 'other' });
    await expect(set.plan(object)).resolves.toBe('would_conflict');
  });
});

describe('copyFor and combined', () => {
  it('re-keys and re-encodes only when the destination differs', () => {
    expect(copyFor(object, { prefix: 'a/', compression: 'none' }, builtWith)).toBe(object);
    const gz = { ...object, body: gzipSync(json), contentEncoding: 'gzip' as const };
    const plain = copyFor(gz, { prefix: '', compression: 'none' }, { prefix: 'a/', compression: 'gzip' });
    expect(plain.key).toBe('1700000000.json');
    expect(plain.body).toEqual(json);
    expect('contentEncoding' in plain).toBe(false);
  });

  it('overwritten beats created beats unchanged', () => {
    expect(combined(['unchanged', 'unchanged'])).toBe('unchanged');
    expect(combined(['unchanged', 'created'])).toBe('created');
    expect(combined(['created', 'overwritten'])).toBe('overwritten');
  });
});
