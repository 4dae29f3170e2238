import { describe, expect, it } from 'vitest';
import { parseAt, parseGetArgs } from '../../../src/archive/get-command.ts';
import { parsePointer, pointerBody } from '../../../src/archive/pointer-document.ts';
import { InputError } from '../../../src/errors.ts';
import { thrownBy } from '../../support/thrown.ts';

describe('get --at', () => {
  it('takes unix seconds or an ISO time with a zone, floored to the second', () => {
    expect(parseAt('1684216515')).toBe(1684216515);
    expect(parseAt('2023-05-16T05:55:15Z')).toBe(1684216515);
    expect(parseAt('2023-05-16T05:55:15.999Z')).toBe(1684216515);
    expect(parseAt('2023-05-16T07:55:15+02:00')).toBe(1684216515);
  });

  it('refuses anything else as bad usage (InputError: exit 2)', () => {
    for (const bad of ['', 'yesterday', '2023-05-16', '2023-05-16T05:55:15', '-5', '1.5e9', '2023-13-45T99:99:99Z']) {
      expect(thrownBy(InputError, () => parseAt(bad)).message, bad).toContain('--at');
    }
  });

  it('wants exactly one of --at and --latest', () => {
    expect(parseGetArgs(['--latest'])).toEqual({ request: { kind: 'latest' }, out: undefined });
    expect(parseGetArgs(['--at', '1684216515', '--out', 'x.json'])).toEqual({ request: { kind: 'at', t: 1684216515 }, out: 'x.json' });
    for (const bad of [[], ['--at', '1', '--latest'], ['--latest', 'extra'], ['--bogus']]) {
      expect(thrownBy(InputError, () => parseGetArgs(bad)).message, bad.join(' ')).toContain('usage: tow-and-go get');
    }
  });
});

describe('the latest pointer document', () => {
  const entry = {
    key: 'tow-and-go/1684216515.json',
    last_modified: 1684216515,
    content_sha256: 'a'.repeat(64),
    links: 2,
    source: { topic: 'tow-and-go.updates', partition: 0, offset: '42' },
  };

  it('has the documented field names, in a fixed order', () => {
    expect(pointerBody(entry).toString('utf8')).toBe(
      `{"key":"tow-and-go/1684216515.json","last_modified":1684216515,"content_sha256":"${'a'.repeat(64)}","links":2,"source":{"topic":"tow-and-go.updates","partition":0,"offset":"42"}}`,
    );
    expect(parsePointer(pointerBody({ ...entry, source: { ...entry.source } }))).toEqual(entry);
  });

  it('is not a pointer when it is not JSON or lacks a field', () => {
    expect(parsePointer(Buffer.from('not json'))).toBeUndefined();
    expect(parsePointer(Buffer.from(JSON.stringify({ ...entry, last_modified: '1684216515' })))).toBeUndefined();
    expect(parsePointer(Buffer.from(JSON.stringify({ ...entry, source: undefined })))).toBeUndefined();
  });
});
