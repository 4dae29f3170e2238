/**
 * A small worker_threads pool behind the BodyBuilder port: big plain records are transcoded and
 * hashed on other cores, so the one core the event loop runs on is left for Kafka, S3 and commits.
 *
 * What goes where:
 * - a worker gets a record only when it is plain (its writer schema is the snapshot schema) and its
 *   Avro is at least `minBytes` long (64 KiB, ~8,000 links). The hand-off (copy, post, wake, reply)
 *   costs about the same per record whatever its size, so below that it adds a fifth to a half to
 *   the record's CPU; above it, a tenth or less (bench/bodies.ts);
 * - everything else, and every record the worker's transcoder says undefined to (not plainly valid),
 *   takes the general path here on the main thread (`inlineBodies` / `decodedSnapshotBody`), which
 *   throws the precise DecodeError or ValidationError. So errors are exactly inlineBodies' errors.
 *
 * Scheduling: N slots, each one thread with a FIFO of requests (the worker answers in order); a
 * request goes to the slot with the fewest Avro bytes outstanding. Threads start on first use, so
 * a service that only ever sees small snapshots starts none. The queues need no bound of their
 * own: every outstanding build is a record in the pipeline's in-flight window, which bounds them
 * (INFLIGHT_PER_PARTITION, MAX_INFLIGHT_BYTES, MAX_PROCESS_INFLIGHT_BYTES).
 *
 * Failure: a thread that errors or exits takes its outstanding requests with it. They reject with
 * a plain Error, never a SinkError: the pipeline treats that as a bug and fails the process, which
 * restarts it and re-reads the uncommitted records. The slot gets a fresh thread on next use.
 *
 * Lifetime: an idle thread is unref()ed and never keeps the process alive; while it has requests
 * outstanding it is ref()ed, so an awaited build cannot be lost to the process exiting. close()
 * terminates every thread.
 */
import { Worker } from 'node:worker_threads';
import type { Framed } from './codec.ts';
import { contentHash } from './content-hash.ts';
import { describeError } from './errors.ts';
import type { SnapshotLimits } from './snapshot.ts';
import { type BodyBuilder, type BuiltBody, decodedSnapshotBody, inlineBodies } from './snapshot-transcoder.ts';
import type { BuildReply, BuildRequest } from './snapshot-worker.ts';

/**
 * bench/bodies.ts, process CPU per record on a worker vs on the main thread: 1,000 links (8 KiB)
 * +50%, 5,000 (41 KiB) +20%, 10,000 (81 KiB) +13%, 50,000 (407 KiB) +1%; the main thread's share
 * falls to a fifth, a tenth, 7% and 7% of inline. Below 64 KiB the saving is small and dear.
 */
export const DEFAULT_MIN_WORKER_BYTES = 64 * 1024;
const WORKER_ENTRY = new URL('./snapshot-worker.ts', import.meta.url);

export interface SnapshotWorkersOptions {
  /** Threads, at most; each starts when first needed. */
  readonly workers: number;
  /** Smallest Avro body (bytes) worth a worker; smaller plain records are built on this thread. */
  readonly minBytes?: number;
  /** The worker script; tests swap in one that fails on purpose. */
  readonly entry?: URL;
}

export interface SnapshotWorkersStats {
  /** Builds done on this thread from the start (small or not plain). */
  readonly inline: number;
  /** Builds sent to a worker. */
  readonly offloaded: number;
  /** Sent to a worker, whose transcoder left the record to the general path on this thread. */
  readonly fallbacks: number;
  readonly threadsStarted: number;
  readonly threadsFailed: number;
  readonly threadsRunning: number;
  readonly outstanding: number;
}

interface Outstanding {
  readonly framed: Framed;
  readonly limits: SnapshotLimits;
  readonly nowSeconds: number;
  readonly bytes: number;
  resolve(body: BuiltBody): void;
  reject(error: unknown): void;
}

/** One thread and what it has been sent but not yet answered, in sending order. */
interface Slot {
  readonly index: number;
  readonly worker: Worker;
  readonly outstanding: Map<number, Outstanding>;
  bytes: number;
  /** Set once the thread failed or was terminated: it gets nothing more. */
  gone: boolean;
}

export class SnapshotWorkers implements BodyBuilder {
  readonly #slots: (Slot | undefined)[];
  readonly #minBytes: number;
  readonly #entry: URL;
  #nextId = 0;
  #closed = false;
  #inline = 0;
  #offloaded = 0;
  #fallbacks = 0;
  #started = 0;
  #failed = 0;

  constructor(options: SnapshotWorkersOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${options.workers}`);
    this.#slots = new Array<Slot | undefined>(options.workers).fill(undefined);
    this.#minBytes = options.minBytes ?? DEFAULT_MIN_WORKER_BYTES;
    this.#entry = options.entry ?? WORKER_ENTRY;
  }

  build(framed: Framed, limits: SnapshotLimits, nowSeconds: number): Promise<BuiltBody> {
    if (this.#closed) return Promise.reject(new Error('SnapshotWorkers is closed; no build may start after close()'));
    if (!framed.plain || framed.avro.length < this.#minBytes) {
      this.#inline++;
      return inlineBodies.build(framed, limits, nowSeconds);
    }
    this.#offloaded++;
    const slot = this.#leastLoaded();
    const id = this.#nextId++;
    // A copy the worker owns: framed.avro is a view into kafkajs' fetch buffer, which other records
    // (and kafkajs) still read, so it is never transferred (that would detach the whole buffer).
    const avro = new Uint8Array(framed.avro);
    const request: BuildRequest = {
      id,
      avro,
      limits: { minLastModified: limits.minLastModified, maxFutureSkewSeconds: limits.maxFutureSkewSeconds, maxLinks: limits.maxLinks },
      nowSeconds,
    };
    return new Promise<BuiltBody>((resolve, reject) => {
      if (slot.outstanding.size === 0) slot.worker.ref();
      slot.outstanding.set(id, { framed, limits, nowSeconds, bytes: avro.length, resolve, reject });
      slot.bytes += avro.length;
      slot.worker.postMessage(request, [avro.buffer]);
    });
  }

  stats(): SnapshotWorkersStats {
    const live = this.#slots.filter((s): s is Slot => s !== undefined);
    return {
      inline: this.#inline,
      offloaded: this.#offloaded,
      fallbacks: this.#fallbacks,
      threadsStarted: this.#started,
      threadsFailed: this.#failed,
      threadsRunning: live.length,
      outstanding: live.reduce((n, s) => n + s.outstanding.size, 0),
    };
  }

  /** Terminates every thread; builds still outstanding reject. Later builds reject too. */
  async close(): Promise<void> {
    this.#closed = true;
    const live = this.#slots.filter((s): s is Slot => s !== undefined);
    for (const slot of live) this.#retire(slot, new Error(`snapshot worker ${slot.index} was closed with the build outstanding`));
    await Promise.all(live.map((s) => s.worker.terminate()));
  }

  /** An idle thread, else a new one (starting costs tens of ms), else the fewest bytes outstanding. */
  #leastLoaded(): Slot {
    let least: Slot | undefined;
    let unstarted: number | undefined;
    for (const [index, slot] of this.#slots.entries()) {
      if (slot === undefined) unstarted ??= index;
      else if (least === undefined || slot.bytes < least.bytes) least = slot;
    }
    if (least !== undefined && (least.bytes === 0 || unstarted === undefined)) return least;
    return this.#start(unstarted ?? 0);
  }

  #start(index: number): Slot {
    // No flags from the parent's command line: `--input-type`, an `--import` probe or `--inspect`
    // there are meant for the main thread and break or burden a worker.
    const worker = new Worker(this.#entry, { name: `snapshot-body-${index}`, execArgv: [] });
    const slot: Slot = { index, worker, outstanding: new Map(), bytes: 0, gone: false };
    this.#slots[index] = slot;
    this.#started++;
    worker.unref();
    worker.on('message', (reply: BuildReply) => this.#answer(slot, reply));
    worker.on('error', (error) => this.#fail(slot, error));
    worker.on('messageerror', (error) => this.#fail(slot, error));
    worker.on('exit', (code) => this.#fail(slot, new Error(`exited with code ${code}`)));
    return slot;
  }

  #answer(slot: Slot, reply: BuildReply): void {
    const task = slot.outstanding.get(reply.id);
    if (task === undefined) return; // already rejected: the slot was retired meanwhile
    slot.outstanding.delete(reply.id);
    slot.bytes -= task.bytes;
    if (slot.outstanding.size === 0) slot.worker.unref();
    if (reply.plain) {
      const json = Buffer.from(reply.json.buffer, reply.json.byteOffset, reply.json.byteLength);
      task.resolve({ lastModified: reply.lastModified, links: reply.links, json, sha256: reply.sha256 });
      return;
    }
    this.#fallbacks++;
    try {
      const { lastModified, links, json } = decodedSnapshotBody(task.framed, task.limits, task.nowSeconds);
      task.resolve({ lastModified, links, json, sha256: contentHash(json) });
    } catch (error) {
      task.reject(error);
    }
  }

  /** The thread is lost: its outstanding builds fail as a bug would, and the slot starts afresh. */
  #fail(slot: Slot, error: unknown): void {
    if (slot.gone) return;
    this.#failed++;
    const lost = slot.outstanding.size;
    this.#retire(slot, new Error(`snapshot worker ${slot.index} failed with ${lost} build(s) outstanding: ${describeError(error)}`, { cause: error }));
    void slot.worker.terminate(); // after 'messageerror' the thread may still run
  }

  #retire(slot: Slot, error: Error): void {
    slot.gone = true;
    if (this.#slots[slot.index] === slot) this.#slots[slot.index] = undefined;
    const tasks = [...slot.outstanding.values()];
    slot.outstanding.clear();
    slot.bytes = 0;
    slot.worker.unref();
    for (const task of tasks) task.reject(error);
  }
}
