/**
 * S3_DESTINATIONS: several S3 destinations for every snapshot, as a JSON list. Each entry names
 * its bucket and may set its own prefix, region, endpoint and compression; what it leaves out comes
 * from the single-bucket settings (S3_PREFIX, S3_REGION, S3_ENDPOINT, S3_COMPRESSION). Credentials,
 * timeouts, encryption and the conflict policy are shared. Empty (the default) means one
 * destination, `default`, made of the single-bucket settings.
 */
import { z } from 'zod';

export const BUCKET_NAME = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not a valid S3 bucket name');
export const KEY_PREFIX = z.string().regex(/^([^/].*\/)?$/, 'must be empty or end with "/" and not start with "/"');
export const ENDPOINT = z.union([z.literal(''), z.url({ protocol: /^https?$/ })]);

const entry = z.strictObject({
  /** Metric label and log name: short and safe. */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'name: lower-case letters, digits, - and _, at most 40'),
  bucket: BUCKET_NAME,
  prefix: KEY_PREFIX.optional(),
  region: z.string().min(1).optional(),
  endpoint: ENDPOINT.optional(),
  compression: z.enum(['none', 'gzip']).optional(),
});

export type DestinationEntry = z.output<typeof entry>;

const list = z
  .array(entry)
  .min(1, 'expected at least one destination')
  .superRefine((destinations, ctx) => {
    const names = destinations.map((d) => d.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate !== undefined) ctx.addIssue({ code: 'custom', message: `destination name ${duplicate} appears twice` });
  });

/**
 * '' → undefined (the single-bucket settings); otherwise a non-empty list of distinct names. Each
 * problem names where it is (`[1].bucket: …`): a JSON setting is hard to read back.
 */
export const DESTINATIONS = z.string().transform((text, ctx): DestinationEntry[] | undefined => {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not valid JSON (expected a list of {name, bucket, prefix?, region?, endpoint?, compression?})' });
    return z.NEVER;
  }
  const parsed = list.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    ctx.addIssue({ code: 'custom', message: where === '' ? issue.message : `${where.replace(/^\./, '')}: ${issue.message}` });
  }
  return z.NEVER;
});
