/**
 * Start-up checks (issue 10): before anything starts, each dependency is asked once, in parallel,
 * with a timeout, whether it will serve this service. Each answer is one of:
 * - ok;
 * - refused: it will not pass by waiting (a wrong password, a missing ACL, an untrusted
 *   certificate, a missing bucket). The command prints one line and exits 2;
 * - down: no answer, or an answer that may change (connection refused, timeout, 5xx). Not fatal:
 *   one warning, the service starts, stays not ready, and the normal retry paths take over.
 *
 * The classification is pure (kafkaOutcome, registryOutcome, s3Outcome) and unit-tested; the I/O
 * around it is thin. What each dependency answers to what is written next to each check.
 */
import type { Logger } from 'pino';
import { type DependencyRefusedError, describeError } from './errors.ts';
import { CHECK_TIMEOUT_MS, type Check, down, type Outcome } from './preflight-outcome.ts';

export { type KafkaCheckScope, kafkaCheck, kafkaOutcome } from './preflight-kafka.ts';
export { CHECK_TIMEOUT_MS, type Check, type Outcome } from './preflight-outcome.ts';
export { REGISTRY_PROBE_PATH, registryCheck, registryOutcome } from './preflight-registry.ts';
export { S3_PROBE_KEY, type S3CheckSettings, s3Check, s3Outcome } from './preflight-s3.ts';

/** One check, bounded: no answer within `timeoutMs` is `down`, and a check that throws is `down` too. */
export async function runCheck(check: Check, timeoutMs = CHECK_TIMEOUT_MS): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve(down(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([check.run().catch((error: unknown) => down(describeError(error))), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs every check in parallel. Throws the first refusal (in the order given) after logging any
 * further ones; logs one warning per dependency that is down and returns those checks, so the
 * caller can ask them again until they answer.
 */
export async function startupChecks(
  checks: readonly Check[],
  log: Logger,
  whenDown = 'starting anyway, not ready until it answers',
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<Check[]> {
  const started = Date.now();
  const outcomes = await Promise.all(checks.map((check) => runCheck(check, timeoutMs)));
  const refusals: DependencyRefusedError[] = [];
  const downChecks: Check[] = [];
  outcomes.forEach((outcome, i) => {
    const check = checks[i] as Check;
    if (outcome.state === 'refused') refusals.push(outcome.error);
    else if (outcome.state === 'down') {
      downChecks.push(check);
      log.warn({ dependency: check.dependency, reason: outcome.reason }, `${check.dependency} did not answer the start-up check; ${whenDown}`);
    } else if (outcome.note !== undefined) log.warn({ dependency: check.dependency }, outcome.note);
  });
  const [first, ...others] = refusals;
  for (const other of others) log.error({ err: other.message }, 'start-up check refused');
  if (first !== undefined) throw first;
  log.info({ ms: Date.now() - started, down: downChecks.map((c) => c.dependency) }, 'start-up checks done');
  return downChecks;
}

export interface Recheck {
  cancel(): void;
}

/**
 * A dependency coming back from an outage can refuse for a moment while it boots (a registry that
 * answers 404 until its routes are up): on a re-check, a refusal counts only once it has been
 * given this many times in a row.
 */
export const REFUSALS_TO_BELIEVE = 3;

/** Asks a dependency that was down at start again, with capped backoff, until it answers (ok, or refused REFUSALS_TO_BELIEVE times in a row). */
export function recheckUntilAnswered(
  check: Check,
  events: { onAnswered(): void; onRefused(error: DependencyRefusedError): void },
  log: Logger,
  timeoutMs = CHECK_TIMEOUT_MS,
): Recheck {
  let cancelled = false;
  let timer: NodeJS.Timeout | undefined;
  let refusals = 0;
  const attempt = async (n: number): Promise<void> => {
    if (cancelled) return;
    const outcome = await runCheck(check, timeoutMs);
    if (cancelled) return;
    refusals = outcome.state === 'refused' ? refusals + 1 : 0;
    if (outcome.state === 'refused' && refusals >= REFUSALS_TO_BELIEVE) {
      events.onRefused(outcome.error);
      return;
    }
    if (outcome.state !== 'ok') {
      if (outcome.state === 'refused')
        log.warn({ dependency: check.dependency, err: outcome.error.message }, `${check.dependency} refused the re-check; asking again`);
      timer = setTimeout(() => void attempt(n + 1), Math.min(10_000, 1000 * 2 ** n)).unref();
      return;
    }
    log.info({ dependency: check.dependency }, `${check.dependency} answers now`);
    events.onAnswered();
  };
  timer = setTimeout(() => void attempt(0), 1000).unref();
  return {
    cancel: () => {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}
