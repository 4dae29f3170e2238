/**
 * The service as shipped: startConsumerService(config, logger) with every setting at its default
 * except the names, HTTP_PORT=0, silent logs and (behind the latency proxy) the S3 endpoint.
 * Timed from the call. It never says it is done: the parent polls the group's committed offsets
 * and tells it (`stop <epoch ms>`), so no polling runs in this process.
 */
import pino from 'pino';
import { loadConfig } from '../../../src/config.ts';
import { startConsumerService } from '../../../src/main.ts';
import type { VariantParams } from '../protocol.ts';
import { deferred, type PreparedVariant } from './types.ts';

export async function prepare(p: VariantParams): Promise<PreparedVariant> {
  const config = loadConfig(p.env);
  const log = pino({ level: 'silent' });
  return {
    start() {
      const done = deferred<number>();
      let created = () => 0;
      const service = startConsumerService(config, log);
      service.then(
        (s) => {
          created = () => s.metrics.records.get({ outcome: 'created' });
          return s.failed.then((error) => done.reject(error ?? new Error('the service failed')));
        },
        (error: unknown) => done.reject(error),
      );
      return {
        done: done.promise,
        running: service.then(() => undefined),
        objects: () => created(),
        close: async () => {
          const s = await service;
          if (!(await s.stop('benchmark done'))) throw new Error('the service did not stop within SHUTDOWN_TIMEOUT_MS');
        },
      };
    },
  };
}
