/**
 * The change schema: avsc builds it and round-trips records, and Apache Avro's own Python library
 * (Debian's python3-avro, an implementation nobody here wrote) reads what avsc writes and writes
 * what avsc reads.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHANGE_SCHEMA_PATH, type ChangeRecord, changeRecord, loadChangeSchema, omittedRecord } from '../../../src/changes/change-record.ts';
import { computeDelta } from '../../../src/changes/delta.ts';
import { PYTHON } from '../../support/interop.ts';

const { type } = loadChangeSchema();
const current = { key: 'tow-and-go/1684216575.json', lastModified: 1684216575, sha256: 'ab'.repeat(32) };
const base = { key: 'tow-and-go/1684216515.json', lastModified: 1684216515 };
const delta = computeDelta(
  [
    { link_id: 17806054, segment_id: 457160414 },
    { link_id: 17857686, segment_id: null },
    { link_id: 2 ** 40, segment_id: 1 },
  ],
  [
    { link_id: 17806054, segment_id: null },
    // The largest long avsc writes (2^53 - 2; it refuses MAX_SAFE_INTEGER as possibly inexact).
    { link_id: 17857686, segment_id: 9_007_199_254_740_990 },
    { link_id: 17900001, segment_id: null },
    { link_id: 17900002, segment_id: 42 },
  ],
);
const records: ChangeRecord[] = [
  changeRecord(current, base, delta),
  changeRecord(current, undefined, computeDelta([], [{ link_id: 1, segment_id: null }])),
  omittedRecord(changeRecord(current, base, delta)),
];

/** Decodes each hex body with python3-avro's DatumReader and prints the records as JSON. */
const PY_READ = `
import io, json, sys
import avro.io, avro.schema
schema = avro.schema.parse(open(sys.argv[1]).read())
reader = avro.io.DatumReader(schema)
out = []
for body in json.load(sys.stdin):
    buf = io.BytesIO(bytes.fromhex(body))
    out.append(reader.read(avro.io.BinaryDecoder(buf)))
    if buf.read():
        sys.exit("trailing bytes")
print(json.dumps(out))
`;

const PY_WRITE = `
import io, json, sys
import avro.io, avro.schema
schema = avro.schema.parse(open(sys.argv[1]).read())
writer = avro.io.DatumWriter(schema)
out = []
for record in json.load(sys.stdin):
    buf = io.BytesIO()
    writer.write(record, avro.io.BinaryEncoder(buf))
    out.append(buf.getvalue().hex())
print(json.dumps(out))
`;

function python(script: string, input: unknown): unknown {
  const result = spawnSync(PYTHON, ['-c', script, CHANGE_SCHEMA_PATH.pathname], { input: JSON.stringify(input), encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`python3-avro failed (${String(result.status)}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

describe('avro/tow-and-go-change.avsc', () => {
  it('is a record avsc builds, documented field by field', () => {
    const schema = JSON.parse(readFileSync(CHANGE_SCHEMA_PATH, 'utf8')) as { name: string; doc: string; fields: { name: string; doc?: string }[] };
    expect(schema.name).toBe('TowAndGoChange');
    expect(schema.doc).toMatch(/base_last_modified/);
    for (const field of schema.fields) expect(field.doc, field.name).toBeTruthy();
    expect(schema.fields.map((f) => f.name)).toEqual(Object.keys(records[0] as ChangeRecord));
  });

  it('round-trips every kind of record through avsc', () => {
    for (const record of records) {
      expect(type.isValid(record)).toBe(true);
      expect(type.fromBuffer(type.toBuffer(record))).toEqual(record);
    }
  });

  it('refuses a record the consumer could misread (a base kind it does not know)', () => {
    expect(type.isValid({ ...records[0], base: 'LATEST' })).toBe(false);
  });

  it('python3-avro reads what avsc writes', () => {
    const read = python(
      PY_READ,
      records.map((r) => type.toBuffer(r).toString('hex')),
    );
    expect(read).toEqual(records);
  });

  it('avsc reads what python3-avro writes, byte for byte the same', () => {
    const written = python(PY_WRITE, records) as string[];
    expect(written.map((hex) => type.fromBuffer(Buffer.from(hex, 'hex')))).toEqual(records);
    expect(written).toEqual(records.map((r) => type.toBuffer(r).toString('hex')));
  });
});
