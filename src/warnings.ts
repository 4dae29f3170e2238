/**
 * kafkajs 2.2.4 schedules its request-queue timer with a negative delay when a throttle time has
 * already passed; Node 24 then prints a TimeoutNegativeWarning (the timer still fires at once, as
 * before). That line is noise on stderr for every command, so it alone is filtered.
 *
 * Node prints warnings from a 'warning' listener of its own (which also honours --no-warnings,
 * --disable-warning, --trace-warnings and --redirect-warnings). Rather than print warnings
 * ourselves, each listener present at start is wrapped so that it skips this one warning, and
 * every other warning still reaches it, and so is printed exactly as Node prints it.
 */
const FILTERED = new Set(['TimeoutNegativeWarning']);

type WarningListener = (warning: Error) => void;
const wrapped = new WeakSet<WarningListener>();

/** Pure: whether a process warning is one we know to be noise. */
export function isKnownNoise(warning: Error): boolean {
  return FILTERED.has(warning.name);
}

/** Idempotent: a second call does not wrap the wrappers. */
export function filterKnownWarnings(): void {
  for (const listener of process.listeners('warning') as WarningListener[]) {
    if (wrapped.has(listener)) continue;
    const filtered: WarningListener = (warning) => {
      if (!isKnownNoise(warning)) listener(warning);
    };
    wrapped.add(filtered);
    process.removeListener('warning', listener);
    process.on('warning', filtered);
  }
}
