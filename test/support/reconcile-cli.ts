/**
 * Runs `reconcileCommand` as its own process, the way cli.ts runs a command (exit code, one line on
 * stderr for an error), until cli.ts dispatches `tow-and-go reconcile` to it.
 */
import { reconcileCommand } from '../../src/archive/reconcile-command.ts';
import { loadConfig } from '../../src/config.ts';
import { DependencyRefusedError, describeError, InputError } from '../../src/errors.ts';
import { filterKnownWarnings } from '../../src/warnings.ts';

filterKnownWarnings();
reconcileCommand(loadConfig(process.env), process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 100).unref();
  },
  (error: unknown) => {
    process.stderr.write(`tow-and-go: ${describeError(error)}\n`);
    process.exit(error instanceof InputError || error instanceof DependencyRefusedError ? 2 : 1);
  },
);
