/**
 * The hash that tells re-delivery from conflict, in a module of its own so that a worker thread
 * (snapshot-worker.ts) can hash bodies without loading zod through snapshot.ts.
 */
import { createHash } from 'node:crypto';

/** Hex SHA-256 of the body, stored in object metadata to tell re-delivery from conflict. */
export function contentHash(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}
