import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { parseSnapshots } from '../../src/publish.ts';
import type { SnapshotLimits } from '../../src/snapshot.ts';

const NOW = 1_700_000_000;
const LIMITS: SnapshotLimits = { minLastModified: 946_684_800, maxFutureSkewSeconds: 86_400, maxLinks: 1000 };

function inputError(text: string, source = 'in.jsonl'): InputError {
  try {
    parseSnapshots(text, source, LIMITS, NOW);
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected an InputError');
}

const line = (lastModified: number, linkId = 1) => JSON.stringify({ last_modified: lastModified, tow_and_go: [{ link_id: linkId, segment_id: null }] });

describe('parseSnapshots', () => {
  it('reads a single pretty-printed JSON document as one snapshot', () => {
    const text = JSON.stringify({ last_modified: NOW, tow_and_go: [{ link_id: 5, segment_id: 6 }] }, null, 2);
    expect(text.split('\n').length).toBeGreaterThan(3);
    expect(parseSnapshots(text, 'seed.json', LIMITS, NOW).snapshots).toEqual([{ last_modified: NOW, tow_and_go: [{ link_id: 5, segment_id: 6 }] }]);
  });

  it('reads JSON Lines as one snapshot per line, in order', () => {
    const text = `${line(NOW - 2)}\n${line(NOW - 1)}\n${line(NOW)}\n`;
    expect(parseSnapshots(text, 'in.jsonl', LIMITS, NOW).snapshots.map((s) => s.last_modified)).toEqual([NOW - 2, NOW - 1, NOW]);
  });

  it('skips blank and whitespace-only lines and tolerates CRLF', () => {
    const text = `\n${line(NOW - 1)}\r\n   \r\n\n${line(NOW)}\r\n\t\n`;
    expect(parseSnapshots(text, 'in.jsonl', LIMITS, NOW).snapshots.map((s) => s.last_modified)).toEqual([NOW - 1, NOW]);
  });

  it('drops unknown fields, as the consumer does', () => {
    const text = JSON.stringify({ last_modified: NOW, note: 'x', tow_and_go: [] });
    expect(parseSnapshots(text, 'x.json', LIMITS, NOW).snapshots).toStrictEqual([{ last_modified: NOW, tow_and_go: [] }]);
  });

  it.each([
    ['empty input', ''],
    ['blank lines only', '\n  \n\t\n'],
  ])('rejects %s with "no snapshot in the input"', (_name, text) => {
    expect(inputError(text, 'stdin').message).toBe('stdin: no snapshot in the input');
  });

  it('names source:line and the field path of an invalid JSON Lines record', () => {
    const text = `${line(NOW)}\n\n${line(NOW, 0)}\n${line(NOW)}\n`;
    const error = inputError(text, 'feed.jsonl');
    expect(error.message).toMatch(/^feed\.jsonl:3: invalid snapshot: tow_and_go\[0\]\.link_id: /);
    expect(error.code).toBe('INPUT_INVALID');
    expect(error.retryable).toBe(false);
    expect(Array.isArray(error.cause)).toBe(true);
  });

  it('names the line of a record that is not JSON', () => {
    const error = inputError(`${line(NOW)}\n{"last_modified": \n${line(NOW)}`, 'feed.jsonl');
    expect(error.message).toMatch(/^feed\.jsonl:2: not valid JSON \(/);
  });

  it('names the line where a single document starts, after leading blank lines', () => {
    const text = `\n\n${JSON.stringify({ last_modified: 5, tow_and_go: [] }, null, 2)}\n`;
    expect(inputError(text, 'seed.json').message).toMatch(/^seed\.json:3: invalid snapshot: last_modified: must be at or after 946684800/);
  });

  it('names the root when the document is not an object', () => {
    expect(inputError('[1, 2]', 'x.json').message).toMatch(/^x\.json:1: invalid snapshot: \(root\): /);
  });

  it.each([
    ['the first line', 0],
    ['a middle line', 1],
    ['the last line', 2],
  ])('returns nothing when only %s is invalid', (_name, bad) => {
    const lines = [line(NOW - 2), line(NOW - 1), line(NOW)];
    lines[bad] = line(1);
    expect(() => parseSnapshots(lines.join('\n'), 'in.jsonl', LIMITS, NOW)).toThrow(new RegExp(`^in\\.jsonl:${bad + 1}: `));
  });

  it('uses the same limits as the consumer', () => {
    const tooMany = JSON.stringify({ last_modified: NOW, tow_and_go: [1, 2, 3].map((id) => ({ link_id: id, segment_id: null })) });
    expect(() => parseSnapshots(tooMany, 'x.json', { ...LIMITS, maxLinks: 2 }, NOW)).toThrow(
      /x\.json:1: invalid snapshot: tow_and_go: must have at most 2 links/,
    );
  });
});

describe('tow-and-go publish --compression', () => {
  /** The real CLI; every case fails on its arguments, before reading input or opening a connection. */
  function publishCli(...args: string[]) {
    const result = spawnSync(process.execPath, ['src/cli.ts', 'publish', ...args], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      env: { PATH: process.env.PATH ?? '' },
      input: '',
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  it.each([
    ['an unknown codec', ['--compression', 'brotli'], 'tow-and-go: --compression must be one of none, gzip, snappy, lz4, zstd (got "brotli")\n'],
    ['a codec name in the wrong case', ['--compression=GZIP'], 'tow-and-go: --compression must be one of none, gzip, snappy, lz4, zstd (got "GZIP")\n'],
    ['a missing value', ['--compression'], "tow-and-go: Option '--compression <value>' argument missing\n"],
    [
      'two input files',
      ['--compression', 'zstd', 'a.json', 'b.json'],
      'tow-and-go: usage: tow-and-go publish [--compression none|gzip|snappy|lz4|zstd] [file|-]\n',
    ],
  ])('rejects %s with one line on stderr and exit 2', (_name, args, stderr) => {
    expect(publishCli(...args)).toEqual({ status: 2, stdout: '', stderr });
  });
});
