/**
 * What the orchestrator (bench/run.ts) and a variant child (bench/e2e/variant.ts) say to each other.
 * One JSON object per line on the child's stdout; plain lines on its stdin.
 *
 *   child → parent  {"type":"ready"}                      setup done (imports, bodies), clock not started
 *   parent → child  start
 *   child → parent  {"type":"started","at":<epoch ms>}    the clock and process.cpuUsage() started
 *   child → parent  {"type":"running"}                    service only: startConsumerService returned (joined)
 *   parent → child  stop <epoch ms>                       service only: the parent saw it done at <epoch ms>
 *   child → parent  {"type":"result",…}                   the measurement (VariantResult), then the child exits
 *   child → parent  {"type":"error","message":…}          then the child exits 1
 *
 * Times cross the process boundary as epoch milliseconds with sub-millisecond precision
 * (performance.timeOrigin + performance.now()), the same clock in every process of the machine.
 */

export const VARIANTS = ['service', 'naive', 'consume-only', 'raw-put'] as const;
export type Variant = (typeof VARIANTS)[number];

export function isVariant(s: string): s is Variant {
  return (VARIANTS as readonly string[]).includes(s);
}

export interface VariantParams {
  readonly variant: Variant;
  /** Service settings as environment variables: names, HTTP_PORT, LOG_LEVEL, S3 endpoint (+ keys behind the proxy). */
  readonly env: Readonly<Record<string, string>>;
  /** Records in the topic (= objects to write). */
  readonly n: number;
  readonly links: number;
  /** End offset of every partition of the topic (consume-only is done when it has committed all of them). */
  readonly ends: Readonly<Record<string, string>>;
  /** PUTs in flight (raw-put). */
  readonly concurrency: number;
}

export interface VariantResult {
  readonly variant: Variant;
  /** Start (see each variant) → all objects written and all offsets committed. */
  readonly seconds: number;
  /** process.cpuUsage() user + system over the timed window, in this child only. */
  readonly cpuMs: number;
  /** process.resourceUsage().maxRSS at the end, MiB: the child's peak, setup included. */
  readonly maxRssMiB: number;
  /** Objects written (records consumed, for consume-only). */
  readonly objects: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'started'; readonly at: number }
  | { readonly type: 'running' }
  | ({ readonly type: 'result' } & VariantResult)
  | { readonly type: 'error'; readonly message: string };

/** Epoch milliseconds, sub-millisecond precision, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function parseChildMessage(line: string): ChildMessage | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as { type?: unknown };
    return typeof value.type === 'string' ? (value as ChildMessage) : undefined;
  } catch {
    return undefined;
  }
}
