/**
 * Warnings are printed by Node itself, so each case runs in a child Node and reads its stderr.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isKnownNoise } from '../../src/warnings.ts';

const WARNINGS = fileURLToPath(new URL('../../src/warnings.ts', import.meta.url));

/** Runs `body` in a child Node (with or without the filter) and returns its stderr. */
function stderrOf(body: string, filter: boolean, nodeArgs: string[] = []): string {
  const script = `${filter ? `const { filterKnownWarnings } = await import(${JSON.stringify(WARNINGS)}); filterKnownWarnings();` : ''}\n${body}`;
  const result = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  expect(result.status).toBe(0);
  return result.stderr.replace(/\(node:\d+\)/g, '(node:PID)');
}

// A real TimeoutNegativeWarning, as kafkajs' request queue triggers it, and two ordinary warnings.
const NEGATIVE = 'setTimeout(() => {}, -5);';
const OTHERS = "process.emitWarning('something odd', 'CustomWarning'); process.emitWarning('old API', { type: 'DeprecationWarning', code: 'DEP0999' });";

describe('filterKnownWarnings', () => {
  it('drops a TimeoutNegativeWarning that Node would otherwise print', () => {
    expect(stderrOf(NEGATIVE, false)).toContain('TimeoutNegativeWarning');
    expect(stderrOf(NEGATIVE, true)).toBe('');
  });

  it('prints every other warning exactly as Node prints it', () => {
    const unfiltered = stderrOf(OTHERS, false);
    expect(unfiltered).toContain('(node:PID) CustomWarning: something odd');
    expect(unfiltered).toContain('(node:PID) [DEP0999] DeprecationWarning: old API');
    expect(stderrOf(`${NEGATIVE}\n${OTHERS}`, true)).toBe(unfiltered);
  });

  it('keeps Node’s warning options: --no-warnings still silences the rest', () => {
    expect(stderrOf(OTHERS, true, ['--no-warnings'])).toBe('');
  });

  it('filters only what Node prints: a listener added later still hears every warning', () => {
    const body = `process.on('warning', (w) => process.stderr.write('heard ' + w.name + '\\n'));
      ${NEGATIVE} process.emitWarning('x', 'CustomWarning');`;
    const out = stderrOf(body, true);
    expect(out).toContain('heard TimeoutNegativeWarning');
    expect(out).toContain('heard CustomWarning');
    expect(out).toContain('(node:PID) CustomWarning: x');
    expect(out).not.toContain('(node:PID) TimeoutNegativeWarning');
  });

  it('is idempotent: a second call prints the same', () => {
    const twice = `const { filterKnownWarnings: again } = await import(${JSON.stringify(WARNINGS)}); again();\n${NEGATIVE}\n${OTHERS}`;
    expect(stderrOf(twice, true)).toBe(stderrOf(OTHERS, false));
  });
});

describe('isKnownNoise', () => {
  it.each([
    ['TimeoutNegativeWarning', true],
    ['TimeoutOverflowWarning', false],
    ['DeprecationWarning', false],
    ['Warning', false],
  ])('%s: %s', (name, expected) => {
    const w = new Error('m');
    w.name = name;
    expect(isKnownNoise(w)).toBe(expected);
  });
});
