/**
 * `tow-and-go get --at <ISO time|unix seconds> | --latest [--out file]`: one snapshot from the
 * archive. The body goes to stdout byte for byte (its SHA-256 is the object's content-sha256), or to
 * --out with one summary line on stderr. Nothing at or before the time: one line, exit 1.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { primaryDestination } from '../config-views.ts';
import { InputError } from '../errors.ts';
import { getLatestSnapshot, getSnapshotAt } from './index.ts';

export const GET_USAGE = 'usage: tow-and-go get --at <ISO time|unix seconds> | --latest [--out file]';

export interface GetIo {
  readonly stdout: (bytes: Buffer) => void;
  readonly stderr: (line: string) => void;
  readonly stdoutIsTty: boolean;
}

export type GetRequest = { readonly kind: 'at'; readonly t: number } | { readonly kind: 'latest' };

/** Unix seconds (digits only) or an ISO 8601 time with its zone; a time is floored to its second. */
export function parseAt(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return Math.floor(ms / 1000);
  }
  throw new InputError(`--at: expected unix seconds or an ISO time with a zone (2023-05-16T05:55:15Z), got ${JSON.stringify(text)}`);
}

export function parseGetArgs(args: readonly string[]): { request: GetRequest; out: string | undefined } {
  let values: { at?: string | undefined; latest?: boolean | undefined; out?: string | undefined };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { at: { type: 'string' }, latest: { type: 'boolean' }, out: { type: 'string' } },
      strict: true,
    }));
  } catch (error) {
    throw new InputError(`${error instanceof Error ? error.message : String(error)}; ${GET_USAGE}`);
  }
  if ((values.at === undefined) === (values.latest !== true)) throw new InputError(GET_USAGE);
  const request: GetRequest = values.at === undefined ? { kind: 'latest' } : { kind: 'at', t: parseAt(values.at) };
  return { request, out: values.out };
}

export async function runGet(config: Config, args: readonly string[], io: GetIo): Promise<number> {
  const { request, out } = parseGetArgs(args);
  // The first destination (S3_DESTINATIONS), or the single-bucket settings: where the service builds its objects.
  const destination = primaryDestination(config);
  const options = { s3: destination.s3, prefix: destination.prefix, floor: config.MIN_LAST_MODIFIED };
  const found = request.kind === 'at' ? await getSnapshotAt(request.t, options) : await getLatestSnapshot(options);
  const where = `s3://${destination.s3.bucket}/${destination.prefix}`;
  if (found === undefined) {
    io.stderr(
      request.kind === 'at'
        ? `tow-and-go: no snapshot at or before ${new Date(request.t * 1000).toISOString()} (${request.t}) under ${where}`
        : `tow-and-go: no snapshot under ${where}`,
    );
    return 1;
  }
  if (out === undefined) {
    // Byte for byte, so `get … | sha256sum` matches content-sha256; a newline only for a terminal.
    io.stdout(io.stdoutIsTty ? Buffer.concat([found.body, Buffer.from('\n')]) : found.body);
    return 0;
  }
  await writeFile(out, found.body);
  const when = new Date(found.lastModified * 1000).toISOString();
  io.stderr(`wrote s3://${destination.s3.bucket}/${found.key} (last_modified ${found.lastModified}, ${when}, ${found.body.length} bytes) to ${out}`);
  return 0;
}
