/**
 * kafkajs 2.2.4 schedules its request-queue timer with a negative delay when a throttle time has
 * already passed; Node 24 then prints a TimeoutNegativeWarning (the timer still fires at once, as
 * before). That line is noise on stderr for every command, so it alone is filtered; every other
 * process warning is still printed.
 */
export function filterKnownWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') return;
    process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
}
