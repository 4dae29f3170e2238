/**
 * The domain: what a Tow and Go snapshot is, how it is validated, and what lands in S3.
 * Pure: no I/O, no clock (the caller passes `nowSeconds`).
 */
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { ValidationError } from './errors.ts';

export interface SnapshotLimits {
  /** Oldest accepted last_modified, unix seconds. */
  readonly minLastModified: number;
  /** How far past `nowSeconds` a last_modified may be. */
  readonly maxFutureSkewSeconds: number;
  readonly maxLinks: number;
}

const link = z.object({
  link_id: z.int().positive(),
  segment_id: z.int().positive().nullable(),
});

export function snapshotSchema(limits: SnapshotLimits, nowSeconds: number) {
  const newest = nowSeconds + limits.maxFutureSkewSeconds;
  return z.object({
    last_modified: z
      .int()
      .min(limits.minLastModified, `must be at or after ${limits.minLastModified} (unix seconds)`)
      .max(newest, `must be at most ${limits.maxFutureSkewSeconds}s in the future (<= ${newest})`),
    tow_and_go: z.array(link).max(limits.maxLinks, `must have at most ${limits.maxLinks} links`),
  });
}

export type Snapshot = z.output<ReturnType<typeof snapshotSchema>>;
export type Link = Snapshot['tow_and_go'][number];

/**
 * Validates a decoded value. Unknown fields (from a newer writer schema) are dropped, so the body
 * always has exactly the seed's shape. Throws ValidationError naming the first bad field; zod's
 * issues ride along as `cause`. The message never contains payload values.
 */
export function validateSnapshot(value: unknown, limits: SnapshotLimits, nowSeconds: number): Snapshot {
  const result = schemaFor(limits, nowSeconds).safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(`invalid snapshot: ${summarizeIssues(result.error.issues)}`, { cause: result.error.issues });
}

/**
 * Building a zod schema costs about 100 times more than running it (zod compiles its parser on
 * first use), and the future bound moves once a second; so the schema is kept per limits object
 * and rebuilt only when the second changes.
 */
const schemas = new WeakMap<SnapshotLimits, { nowSeconds: number; schema: ReturnType<typeof snapshotSchema> }>();

function schemaFor(limits: SnapshotLimits, nowSeconds: number): ReturnType<typeof snapshotSchema> {
  const cached = schemas.get(limits);
  if (cached !== undefined && cached.nowSeconds === nowSeconds) return cached.schema;
  const schema = snapshotSchema(limits, nowSeconds);
  schemas.set(limits, { nowSeconds, schema });
  return schema;
}

/** "tow_and_go[3].link_id: Too small: expected number to be >0 (+2 more)" */
export function summarizeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const first = issues[0];
  if (first === undefined) return 'unknown problem';
  const more = issues.length > 1 ? ` (+${issues.length - 1} more)` : '';
  return `${formatPath(first.path)}: ${first.message}${more}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** `<prefix><last_modified>.json`, as the downstream MongoDB sync expects. */
export function objectKey(prefix: string, snapshot: Pick<Snapshot, 'last_modified'>): string {
  return `${prefix}${snapshot.last_modified}.json`;
}

/**
 * The object body: exactly the seed's JSON shape, fields in the seed's order, no whitespace.
 * The bytes are canonical: the same snapshot always gives the same bytes, which is what makes
 * re-delivery detectable by hash. So the input is never stringified as it is (its key order and any
 * extra keys are the caller's): a fresh object with the fixed key order is built and stringified
 * once. Its cost per link stays flat with size, where one template string per link (the earlier
 * version) got dearer per link as snapshots grew (many small strings for the GC): big snapshots
 * are much cheaper, ~1,000-link ones slightly dearer. For validated snapshots (integers,
 * null segment ids) the bytes equal the template version's, which test/unit/snapshot.test.ts keeps
 * and compares against.
 */
export function objectBody(snapshot: Snapshot): Buffer {
  const source = snapshot.tow_and_go;
  const links: Link[] = new Array(source.length);
  for (let i = 0; i < source.length; i++) {
    const l = source[i] as Link;
    links[i] = { link_id: l.link_id, segment_id: l.segment_id };
  }
  return Buffer.from(JSON.stringify({ last_modified: snapshot.last_modified, tow_and_go: links }), 'utf8');
}

/** Hex SHA-256 of the body; in content-hash.ts, which a worker thread can load without zod. */
export { contentHash } from './content-hash.ts';

export type Compression = 'none' | 'gzip';

/**
 * The bytes to upload. gzip output is deterministic here (zlib writes no timestamp or name), so the
 * same snapshot still gives the same bytes; the hash that detects re-delivery is taken of the JSON
 * before compression, so turning compression on or off never makes a re-delivery look like a
 * conflict.
 */
export function encodeBody(body: Buffer, compression: Compression): Buffer {
  return compression === 'gzip' ? gzipSync(body, { level: 6 }) : body;
}
