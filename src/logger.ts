/**
 * One pino root logger. Credentials are redacted by path as a second line of defence: the config
 * is already redacted before it is logged, and payloads are never logged at all.
 */
import pino, { type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
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
  });
}
