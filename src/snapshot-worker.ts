/**
 * The worker-thread side of SnapshotWorkers (snapshot-workers.ts): one message in, one message
 * out, in arrival order. It runs the transcoder and the hash, nothing else.
 *
 * It imports only the pure transcoder and the hash (node:crypto), never zod, avsc or the registry
 * client: a worker starts in tens of milliseconds and holds little memory. Everything that needs
 * those (the general path for records the transcoder says undefined to, and its precise errors)
 * stays on the main thread. test/unit/snapshot-workers.test.ts checks this import closure.
 *
 * A throw here is a bug, never bad input (the transcoder returns undefined for bad input): it is
 * left uncaught, so the thread dies and the pool rejects what was sent to it.
 */
import { parentPort } from 'node:worker_threads';
import { contentHash } from './content-hash.ts';
import { transcodeSnapshot } from './plain-transcoder.ts';
import type { SnapshotLimits } from './snapshot.ts';

export interface BuildRequest {
  readonly id: number;
  /** A copy of the record's Avro body that the worker owns (its ArrayBuffer was transferred). */
  readonly avro: Uint8Array;
  readonly limits: SnapshotLimits;
  readonly nowSeconds: number;
}

export type BuildReply =
  | { readonly id: number; readonly plain: true; readonly lastModified: number; readonly links: number; readonly json: Uint8Array; readonly sha256: string }
  /** The transcoder said undefined: the main thread runs the general path, which names the problem. */
  | { readonly id: number; readonly plain: false };

const port = parentPort;
if (port === null) throw new Error('snapshot-worker.ts is a worker_threads entry; SnapshotWorkers starts it');

port.on('message', (request: BuildRequest) => {
  const body = transcodeSnapshot(request.avro, request.limits, request.nowSeconds);
  if (body === undefined) {
    port.postMessage({ id: request.id, plain: false } satisfies BuildReply);
    return;
  }
  const { bytes, buffer } = transferable(body.json);
  const reply: BuildReply = { id: request.id, plain: true, lastModified: body.lastModified, links: body.links, json: bytes, sha256: contentHash(bytes) };
  port.postMessage(reply, [buffer]);
});

/**
 * The body and the ArrayBuffer to transfer with it: its own, when it owns all of it (every body of
 * a record big enough to come here: Buffer.allocUnsafe pools only below 4 KiB), else that of an
 * exact copy, so a pooled slab is neither sent whole nor detached under other Buffers.
 */
function transferable(json: Buffer): { bytes: Uint8Array; buffer: ArrayBuffer } {
  const buffer = json.buffer;
  if (buffer instanceof ArrayBuffer && json.byteOffset === 0 && json.byteLength === buffer.byteLength) return { bytes: json, buffer };
  const copy = new Uint8Array(json);
  return { bytes: copy, buffer: copy.buffer };
}
