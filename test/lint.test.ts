/**
 * The lint, format and type checks are part of the test suite, so `npm test` fails on them.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

describe('code quality gates', () => {
  it('biome finds no lint or format problems', () => {
    const result = spawnSync(bin('biome'), ['check', '.'], { cwd: root, encoding: 'utf8' });
    expect(result.stdout + result.stderr).not.toMatch(/Found \d+ error/);
    expect(result.status).toBe(0);
  });

  it('tsc type-checks src, tests and benchmarks in strict mode', () => {
    const result = spawnSync(bin('tsc'), ['-p', '.'], { cwd: root, encoding: 'utf8' });
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});
