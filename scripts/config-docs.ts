/**
 * The README's settings table and error-code table, generated from the code so that they cannot
 * drift: test/unit/docs.test.ts fails when the README holds anything else between the markers.
 *
 *   node scripts/config-docs.ts           prints both tables
 *   node scripts/config-docs.ts --write   rewrites them in README.md, between the markers
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { SETTINGS } from '../src/config.ts';
import {
  ConfigError,
  ConflictError,
  CorruptObjectError,
  DecodeError,
  DependencyRefusedError,
  InputError,
  KafkaUnavailableError,
  RegistryUnavailableError,
  S3RejectedError,
  S3UnavailableError,
  type SinkError,
  ValidationError,
} from '../src/errors.ts';

export const README_PATH = new URL('../README.md', import.meta.url);

/** Marker comments that fence each generated table in README.md. */
export const MARKERS = {
  settings: { start: '<!-- settings:start -->', end: '<!-- settings:end -->' },
  errors: { start: '<!-- errors:start -->', end: '<!-- errors:end -->' },
} as const;

export type TableName = keyof typeof MARKERS;

/** Table cells are Markdown: `|` would split the cell and `<…>` would render as an HTML tag. */
function cell(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function renderSettingsTable(): string {
  const rows = Object.entries(SETTINGS).map(([name, spec]) => {
    const secret = spec.secret === true;
    return [
      `\`${name}\`${secret ? ' (secret)' : ''}`,
      spec.default === '' ? '(empty)' : `\`${spec.default}\``,
      cell(spec.description) + (secret ? ' Redacted in logs.' : ''),
    ];
  });
  return table(['Variable', 'Default', 'Description'], rows);
}

const STALLS = 'The partition stalls and retries with backoff; /readyz answers 503 meanwhile; never dead-lettered.';
const DEAD_LETTERED = 'Dead-lettered, then committed.';

/**
 * One instance of every error the code can raise, each with what the service does about it.
 * Code, class and retryable flag are read from the instance, so they always match src/errors.ts.
 */
export const ERROR_CATALOGUE: ReadonlyArray<{ readonly error: SinkError; readonly what: string }> = [
  {
    error: new ConfigError('x'),
    what: 'A setting is missing or malformed. Every bad variable is printed by name and the process exits 2 before any connection opens.',
  },
  { error: new DecodeError('PAYLOAD_NULL', 'x'), what: `The record value is null (a tombstone). ${DEAD_LETTERED}` },
  { error: new DecodeError('PAYLOAD_TOO_LARGE', 'x'), what: `The value is larger than MAX_PAYLOAD_BYTES; checked before any decoding. ${DEAD_LETTERED}` },
  {
    error: new DecodeError('WIRE_FORMAT_INVALID', 'x'),
    what: `The value is shorter than the 5-byte Confluent header or its magic byte is not 0. ${DEAD_LETTERED}`,
  },
  { error: new DecodeError('AVRO_DECODE_FAILED', 'x'), what: `The Avro body does not match its writer schema. ${DEAD_LETTERED}` },
  {
    error: new DecodeError('SCHEMA_UNKNOWN', 'x'),
    what: `The registry answered 404 with error_code 40403 for the schema id (the id is then remembered as unknown for 30 s). ${DEAD_LETTERED}`,
  },
  {
    error: new DecodeError('SCHEMA_INCOMPATIBLE', 'x'),
    what: `The writer schema is not Avro, or cannot be resolved to avro/tow-and-go-snapshot.avsc. ${DEAD_LETTERED}`,
  },
  {
    error: new ValidationError('x'),
    what: `Decoded, but not a valid snapshot (zod: link_id a positive integer, segment_id a positive integer or null, last_modified within MIN_LAST_MODIFIED … now + MAX_FUTURE_SKEW_SECONDS, at most MAX_LINKS links). ${DEAD_LETTERED}`,
  },
  {
    error: new ConflictError('x'),
    what: `A different snapshot (other SHA-256) already owns the key and S3_ON_CONFLICT=dlq; the stored object is kept. ${DEAD_LETTERED}`,
  },
  {
    error: new CorruptObjectError('x'),
    what: 'Reading the archive back (`get`, `tow-and-go-sink/archive`): a stored body whose SHA-256 differs from its content-sha256, a gzip object that does not inflate, or a latest.json that is not the pointer document. The message names the key; `get` exits 1. Never raised while consuming.',
  },
  { error: new RegistryUnavailableError('x'), what: `The schema registry timed out, was unreachable or answered anything but a 40403 "not found". ${STALLS}` },
  { error: new S3UnavailableError('x'), what: `S3 answered 408, 425, 429 or 5xx, or the request timed out or lost its connection. ${STALLS}` },
  {
    error: new S3RejectedError('x'),
    what: `S3 refused the request (403 AccessDenied, 404 NoSuchBucket, other 4xx). An operator's problem, not the record's. ${STALLS}`,
  },
  { error: new KafkaUnavailableError('x'), what: `Producing the dead-letter copy failed; the source offset is committed only after the DLQ has it. ${STALLS}` },
  {
    error: new DependencyRefusedError({ dependency: 'kafka', refused: 'x', problem: 'x', check: ['x'], reason: 'x' }),
    what: "Kafka, the registry or S3 refused the service for a reason that retrying will not fix: a wrong password or client secret, a missing ACL, an untrusted or misnamed TLS certificate, a missing bucket, a registry URL that is not the API. Found by the start-up checks (see [Start-up checks](#start-up-checks)), or, for a missing READ on the topic, at the consumer's first fetch. One line names the dependency, the settings to look at and the server's own reason; exit code 2. A dependency that is only down at start is not refused.",
  },
  {
    error: new InputError('x'),
    what: 'CLI input is invalid: a `publish` file or line that is not a valid snapshot (nothing is sent), a bad `replay`/`offsets` argument, or an offsets reset of a group with live members. Exit code 2.',
  },
];

export function renderErrorTable(): string {
  const rows = ERROR_CATALOGUE.map(({ error, what }) => [`\`${error.code}\``, `\`${error.name}\``, error.retryable ? 'yes' : 'no', cell(what)]);
  return table(['Code', 'Class', 'Retryable', 'What happens'], rows);
}

export const RENDERERS: Readonly<Record<TableName, () => string>> = { settings: renderSettingsTable, errors: renderErrorTable };

/** The text between a table's markers, trimmed; undefined when the markers are missing. */
export function extractTable(readme: string, name: TableName): string | undefined {
  const { start, end } = MARKERS[name];
  const from = readme.indexOf(start);
  const to = readme.indexOf(end, from + start.length);
  if (from < 0 || to < 0) return undefined;
  return readme.slice(from + start.length, to).trim();
}

/** The README with both tables replaced by their current rendering. */
export function updateReadme(readme: string): string {
  let out = readme;
  for (const name of Object.keys(MARKERS) as TableName[]) {
    const { start, end } = MARKERS[name];
    const from = out.indexOf(start);
    const to = out.indexOf(end, from + start.length);
    if (from < 0 || to < 0) throw new Error(`README.md has no ${start} … ${end} markers`);
    out = `${out.slice(0, from + start.length)}\n${RENDERERS[name]()}\n${out.slice(to)}`;
  }
  return out;
}

if (import.meta.main) {
  if (process.argv.includes('--write')) {
    writeFileSync(README_PATH, updateReadme(readFileSync(README_PATH, 'utf8')));
    process.stdout.write('README.md: settings and error tables updated\n');
  } else {
    process.stdout.write(`${renderSettingsTable()}\n\n${renderErrorTable()}\n`);
  }
}
