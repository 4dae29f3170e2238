/**
 * The latest pointer's document: `<prefix>latest.json`. Its field names are a public contract
 * (readers outside this service poll it), so they only ever gain fields, never change:
 *
 *   {
 *     "key": "tow-and-go/1684216515.json",   // the snapshot's object key, prefix included
 *     "last_modified": 1684216515,           // the snapshot's last_modified, unix seconds
 *     "content_sha256": "ab12…",             // hex SHA-256 of its uncompressed JSON (= its content-sha256 metadata)
 *     "links": 2,                            // how many tow_and_go entries it has
 *     "source": {                            // the Kafka record it came from
 *       "topic": "tow-and-go.updates",
 *       "partition": 0,
 *       "offset": "42"                       // a decimal string: Kafka offsets exceed 2^53
 *     }
 *   }
 *
 * Readers must ignore fields they do not know.
 */
import { z } from 'zod';

export interface PointerEntry {
  readonly key: string;
  readonly last_modified: number;
  readonly content_sha256: string;
  readonly links: number;
  readonly source: { readonly topic: string; readonly partition: number; readonly offset: string };
}

export const POINTER_NAME = 'latest.json';

const pointerSchema = z.object({
  key: z.string().min(1),
  last_modified: z.int().min(0),
  content_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  links: z.int().min(0),
  source: z.object({ topic: z.string(), partition: z.int().min(0), offset: z.string().regex(/^\d+$/) }),
});

/** The document from its bytes; undefined when they are not a pointer document. */
export function parsePointer(bytes: Buffer): PointerEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = pointerSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** Always the same field order, so equal entries give equal bytes (and equal ETags). */
export function pointerBody(entry: PointerEntry): Buffer {
  const { key, last_modified, content_sha256, links, source } = entry;
  return Buffer.from(
    JSON.stringify({ key, last_modified, content_sha256, links, source: { topic: source.topic, partition: source.partition, offset: source.offset } }),
    'utf8',
  );
}
