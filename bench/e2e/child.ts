/**
 * The orchestrator's side of a child process: variant runs (protocol.ts) and the S3 latency proxy.
 * Every child is started here and ended here, by its own pid, never by name.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BENCH_DIR } from '../common.ts';
import { type ChildMessage, parseChildMessage, type VariantParams, type VariantResult } from './protocol.ts';

type MessageType = ChildMessage['type'];
type MessageOf<T extends MessageType> = Extract<ChildMessage, { type: T }>;

/** A running child that speaks protocol.ts. */
export interface VariantChild {
  next<T extends MessageType>(type: T): Promise<MessageOf<T>>;
  send(line: string): void;
  /** False once the child failed, exited or timed out: a polling `decide` stops then. */
  alive(): boolean;
}

class Messages {
  readonly #seen: ChildMessage[] = [];
  readonly #waiting: { type: MessageType; resolve: (m: ChildMessage) => void; reject: (e: unknown) => void }[] = [];
  #failure: Error | undefined;
  readonly #failed = Promise.withResolvers<never>();

  constructor() {
    this.#failed.promise.catch(() => undefined);
  }

  /** Rejects when the child fails, exits or times out. */
  get failed(): Promise<never> {
    return this.#failed.promise;
  }

  get ok(): boolean {
    return this.#failure === undefined;
  }

  push(m: ChildMessage): void {
    if (m.type === 'error') {
      this.fail(new Error(`child failed: ${m.message}`));
      return;
    }
    const at = this.#waiting.findIndex((w) => w.type === m.type);
    if (at < 0) this.#seen.push(m);
    else this.#waiting.splice(at, 1)[0]?.resolve(m);
  }

  fail(error: Error): void {
    this.#failure ??= error;
    this.#failed.reject(this.#failure);
    for (const w of this.#waiting.splice(0)) w.reject(this.#failure);
  }

  next<T extends MessageType>(type: T): Promise<MessageOf<T>> {
    const at = this.#seen.findIndex((m) => m.type === type);
    if (at >= 0) return Promise.resolve(this.#seen.splice(at, 1)[0] as MessageOf<T>);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiting.push({ type, resolve: (m) => resolve(m as MessageOf<T>), reject }));
  }
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
}

/**
 * Runs one variant child to the end: waits for `ready`, sends `start`, and then either waits for
 * its result (it knows when it is done) or, with `decide`, lets `decide` say when it is done and
 * sends `stop <that time>`. Resolves once the child has exited cleanly; kills it on timeout.
 */
export async function runVariant(
  params: VariantParams,
  timeoutMs: number,
  decide?: (child: VariantChild, startedAt: number) => Promise<number>,
): Promise<VariantResult> {
  const child = spawn(process.execPath, [`${BENCH_DIR}e2e/variant.ts`, params.variant, JSON.stringify(params)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const messages = new Messages();
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  createInterface({ input: child.stdout ?? process.stdin }).on('line', (line) => {
    const m = parseChildMessage(line);
    if (m !== undefined) messages.push(m);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then((code) => messages.fail(new Error(`${params.variant} exited with ${String(code)} before it was done; stderr: ${stderr.trim()}`)));
  const timer = setTimeout(() => {
    messages.fail(new Error(`${params.variant}: not done after ${timeoutMs / 1000} s`));
    kill(child);
  }, timeoutMs);
  const handle: VariantChild = { next: (type) => messages.next(type), send: (line) => child.stdin?.write(`${line}\n`), alive: () => messages.ok };
  try {
    await messages.next('ready');
    handle.send('start');
    const { at } = await messages.next('started');
    if (decide !== undefined) handle.send(`stop ${await Promise.race([decide(handle, at), messages.failed])}`);
    const { type: _, ...result } = await messages.next('result');
    const code = await exited;
    if (code !== 0) throw new Error(`${params.variant} exited with ${String(code)} after its result; stderr: ${stderr.trim()}`);
    return result;
  } catch (error) {
    kill(child);
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
    child.stdin?.end();
  }
}

/** The S3 latency proxy in a process of its own (its CPU is nobody's variant's). */
export interface ProxyChild {
  readonly url: string;
  close(): Promise<void>;
}

export async function startLatencyProxy(targetPort: number, latencyMs: number): Promise<ProxyChild> {
  const child = spawn(process.execPath, [`${BENCH_DIR}e2e/latency-proxy.ts`, String(targetPort), String(latencyMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout ?? process.stdin }).once('line', (line) => resolve(line.trim()));
    void exited.then(() => reject(new Error('the latency proxy exited')));
  });
  return {
    url,
    close: async () => {
      child.stdin?.end(); // it exits when its stdin closes
      const timer = setTimeout(() => kill(child), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
