/**
 * The body of a record, as the pipeline asks for it: the BodyBuilder port, its on-this-thread
 * implementation (`inlineBodies`), and the two ways to a body behind it: the transcoder for plain
 * records (plain-transcoder.ts, the hot path) and the general path (avsc + zod + objectBody), which
 * decides everything the transcoder leaves open and names the problem when there is one.
 *
 * The transcoder lives in its own module because it imports nothing heavy: a worker thread
 * (snapshot-worker.ts) loads it without zod, avsc or the registry client. It is re-exported here.
 */
import type { Framed } from './codec.ts';
import { type TranscodedSnapshot, transcodeSnapshot } from './plain-transcoder.ts';
import { contentHash, objectBody, type SnapshotLimits, validateSnapshot } from './snapshot.ts';

export { type TranscodedSnapshot, transcodeSnapshot } from './plain-transcoder.ts';

/**
 * The canonical body of a framed record: transcoded when the writer schema allows and the snapshot
 * is plainly valid, else decoded, validated by zod and stringified, which throws the precise
 * DecodeError or ValidationError.
 */
export function snapshotBody(framed: Framed, limits: SnapshotLimits, nowSeconds: number): TranscodedSnapshot {
  const fast = framed.plain ? transcodeSnapshot(framed.avro, limits, nowSeconds) : undefined;
  return fast ?? decodedSnapshotBody(framed, limits, nowSeconds);
}

/**
 * The general path alone, for a record the transcoder has already said undefined to (on a worker
 * thread, say): avsc decode, zod, objectBody. Throws DecodeError or ValidationError.
 */
export function decodedSnapshotBody(framed: Framed, limits: SnapshotLimits, nowSeconds: number): TranscodedSnapshot {
  const snapshot = validateSnapshot(framed.decode(), limits, nowSeconds);
  return { lastModified: snapshot.last_modified, links: snapshot.tow_and_go.length, json: objectBody(snapshot) };
}

export interface BuiltBody {
  readonly lastModified: number;
  /** Links in the snapshot, for the size histogram. */
  readonly links: number;
  readonly json: Buffer;
  /** Hex SHA-256 of `json`. */
  readonly sha256: string;
}

/**
 * The CPU-heavy step of a record, as a port: body and hash, on this thread (`inlineBodies`) or on
 * a worker thread (snapshot-workers.ts). Throws what snapshotBody throws.
 */
export interface BodyBuilder {
  build(framed: Framed, limits: SnapshotLimits, nowSeconds: number): Promise<BuiltBody>;
}

export const inlineBodies: BodyBuilder = {
  build: async (framed, limits, nowSeconds) => {
    const { lastModified, links, json } = snapshotBody(framed, limits, nowSeconds);
    return { lastModified, links, json, sha256: contentHash(json) };
  },
};
