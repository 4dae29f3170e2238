/**
 * What a start-up check answers (preflight.ts): ok, down (may pass by waiting) or refused (will
 * not), with the helpers every check builds its answer with.
 */
import { type Dependency, type DependencyRefusedError, describeError, oneLine } from './errors.ts';

/** Bound on one dependency's check. */
export const CHECK_TIMEOUT_MS = 10_000;

export type Outcome =
  | { readonly state: 'ok'; readonly note?: string }
  | { readonly state: 'down'; readonly reason: string }
  | { readonly state: 'refused'; readonly error: DependencyRefusedError };

export interface Check {
  readonly dependency: Dependency;
  run(): Promise<Outcome>;
}

export const ok: Outcome = { state: 'ok' };
export const down = (reason: string): Outcome => ({ state: 'down', reason: oneLine(reason) });
export const refusal = (error: DependencyRefusedError): Outcome => ({ state: 'refused', error });

/** Node's code for a refused or reset connection, else the message; the timeout's abort says so. */
export function networkReason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || (error.cause instanceof Error && error.cause.name === 'TimeoutError')))
    return 'no answer in time';
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  return code ?? describeError(error);
}
