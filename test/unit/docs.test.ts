/**
 * The README, the compose file and the Dockerfile are checked against the code: the generated
 * tables must be current, every setting documented, and no container file may set a variable the
 * service does not read. Fix a failure with `node scripts/config-docs.ts --write`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, extractTable, renderErrorTable, renderSettingsTable, updateReadme } from '../../scripts/config-docs.ts';
import { SETTINGS } from '../../src/config.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const readme = read('README.md');
const compose = read('docker-compose.yml');
const settingNames = new Set(Object.keys(SETTINGS));

/** The literal members of `export type ErrorCode = | 'A' | 'B' …;` in src/errors.ts. */
function declaredErrorCodes(): string[] {
  const source = read('src/errors.ts');
  const union = /export type ErrorCode =([^;]*);/.exec(source)?.[1] ?? '';
  return [...union.matchAll(/'([A-Z0-9_]+)'/g)].map((m) => m[1] ?? '');
}

/** The lines of one top-level service in docker-compose.yml (two-space indented under `services:`). */
function serviceBlock(name: string): string[] {
  const lines = compose.split('\n');
  const start = lines.indexOf(`  ${name}:`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && /^ {0,2}\S/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Variable names under a service's `environment:` (map form `KEY: value` or list form `- KEY=value`). */
function environmentOf(name: string): string[] {
  const block = serviceBlock(name);
  const at = block.findIndex((l) => /^ {4}environment:\s*$/.test(l));
  if (at < 0) return [];
  const names: string[] = [];
  for (const line of block.slice(at + 1)) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    if (!/^ {6}/.test(line)) break;
    const m = /^ {6}(?:- )?([A-Za-z_][A-Za-z0-9_]*)\s*[:=]/.exec(line);
    if (m?.[1] !== undefined) names.push(m[1]);
  }
  return names;
}

function pomProperty(path: string, property: string): string {
  const value = new RegExp(`<${property}>([^<]+)</${property}>`).exec(read(path))?.[1];
  if (value === undefined) throw new Error(`${path} has no <${property}>`);
  return value;
}

describe('README generated tables', () => {
  it('holds the current settings table between its markers', () => {
    expect(extractTable(readme, 'settings')).toBe(renderSettingsTable());
  });

  it('holds the current error-code table between its markers', () => {
    expect(extractTable(readme, 'errors')).toBe(renderErrorTable());
  });

  it('is left unchanged by regenerating it', () => {
    expect(updateReadme(readme)).toBe(readme);
  });

  it('names every setting', () => {
    for (const name of settingNames) expect(readme, name).toContain(`\`${name}\``);
  });

  it('marks exactly the secret settings as secret', () => {
    const table = renderSettingsTable();
    for (const [name, spec] of Object.entries(SETTINGS)) expect(table.includes(`\`${name}\` (secret)`), name).toBe(spec.secret === true);
  });
});

describe('error catalogue', () => {
  it('covers every ErrorCode declared in src/errors.ts, once each', () => {
    const codes = ERROR_CATALOGUE.map((e) => e.error.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect([...codes].sort()).toEqual(declaredErrorCodes().sort());
  });

  it('routes a record to the DLQ only for non-retryable record errors', () => {
    for (const { error, what } of ERROR_CATALOGUE) {
      if (error.retryable) expect(what, error.code).toMatch(/never dead-lettered/);
      if (/Dead-lettered/.test(what)) expect(error.retryable, error.code).toBe(false);
    }
  });
});

describe('container files', () => {
  it('give the sink service only variables the service reads', () => {
    const names = environmentOf('sink');
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(settingNames.has(name), `${name} is not in SETTINGS`).toBe(true);
  });

  it('set in the Dockerfile only variables the service reads (besides NODE_ENV)', () => {
    const envLines = read('Dockerfile')
      .split('\n')
      .filter((l) => l.startsWith('ENV '));
    const names = envLines.flatMap((l) => [...l.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1] ?? ''));
    expect(names).toContain('HTTP_HOST');
    for (const name of names.filter((n) => n !== 'NODE_ENV')) expect(settingNames.has(name), `${name} is not in SETTINGS`).toBe(true);
  });

  it('run the same Kafka and Apicurio Registry versions as the local stack, and the README says which', () => {
    const kafka = pomProperty('stack/kafka/pom.xml', 'kafka.version');
    const registry = pomProperty('stack/registry/pom.xml', 'apicurio.version');
    const s3proxy = pomProperty('stack/s3proxy/pom.xml', 's3proxy.version');
    expect(compose).toContain(`image: apache/kafka:${kafka}`);
    expect(compose).toContain(`image: apicurio/apicurio-registry:${registry}`);
    expect(readme).toContain(`Kafka ${kafka}`);
    expect(readme).toContain(`Apicurio Registry ${registry}`);
    expect(readme).toContain(`S3Proxy ${s3proxy}`);
  });
});
