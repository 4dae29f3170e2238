/**
 * One pino root logger. Credentials are redacted by path as a second line of defence: the config
 * is already redacted before it is logged, and payloads are never logged at all.
 */
import pino, { type Logger } from 'pino';

/** Logs go to stdout, or to `fd` 2 for a command whose stdout is its result (reconcile). */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'tow-and-go-sink' },
    redact: {
      paths: [
        '*.password',
        '*.PASSWORD',
        '*.secretAccessKey',
        '*.KAFKA_SASL_PASSWORD',
        '*.SCHEMA_REGISTRY_PASSWORD',
        '*.S3_SECRET_ACCESS_KEY',
        '*.authorization',
      ],
      censor: '<redacted>',
    },
  };
  return fd === 1 ? pino(options) : pino(options, pino.destination({ fd, sync: true }));
}
