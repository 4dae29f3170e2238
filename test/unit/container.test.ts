/**
 * The image and the compose service run the sink as non-root on a read-only root filesystem. No
 * Docker engine runs here, so the files are checked, not a running container.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The instructions of the Dockerfile's last stage (the image that runs), continuation lines joined. */
function finalStage(dockerfile: string): string[] {
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const from = instructions.findLastIndex((l) => /^FROM\s/i.test(l));
  return instructions.slice(from);
}

/** The lines of one service in docker-compose.yml (two-space indented under `services:`). */
function serviceBlock(compose: string, name: string): string[] {
  const lines = compose.split('\n');
  const start = lines.indexOf(`  ${name}:`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && /^ {0,2}\S/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** A top-level key of a service block: its inline value, or its list items. */
function serviceKey(block: string[], key: string): { value: string | undefined; items: string[] } {
  const at = block.findIndex((l) => new RegExp(`^ {4}${key}:`).test(l));
  if (at < 0) return { value: undefined, items: [] };
  const inline = block[at]?.replace(new RegExp(`^ {4}${key}:\\s*`), '').trim() ?? '';
  const items: string[] = [];
  for (const line of block.slice(at + 1)) {
    const item = /^ {6}- (.*)$/.exec(line)?.[1];
    if (item === undefined) break;
    items.push(item.trim().replace(/^"(.*)"$/, '$1'));
  }
  return { value: inline === '' ? undefined : inline.replace(/^"(.*)"$/, '$1'), items };
}

function isNonRootUser(user: string | undefined): boolean {
  if (user === undefined) return false;
  const [uid] = user.split(':');
  return uid !== undefined && /^\d+$/.test(uid) && Number(uid) !== 0;
}

describe('Dockerfile', () => {
  const stage = finalStage(read('Dockerfile'));

  it('runs as a numeric non-root user (Kubernetes runAsNonRoot can verify it)', () => {
    const users = stage.filter((l) => /^USER\s/i.test(l)).map((l) => l.replace(/^USER\s+/i, ''));
    expect(users.length).toBeGreaterThan(0);
    expect(isNonRootUser(users.at(-1))).toBe(true);
  });

  it('switches to that user after every file is in place, and does not hand it the files', () => {
    const lastUser = stage.findLastIndex((l) => /^USER\s/i.test(l));
    const lastWrite = stage.findLastIndex((l) => /^(COPY|ADD|RUN)\s/i.test(l));
    expect(lastWrite).toBeLessThan(lastUser);
    for (const line of stage.filter((l) => /^(COPY|ADD)\s/i.test(l))) expect(line).not.toMatch(/--chown|--chmod/);
  });

  it('starts the service directly (no shell, no npm) so SIGTERM reaches it', () => {
    expect(stage.find((l) => /^ENTRYPOINT\s/i.test(l))).toBe('ENTRYPOINT ["node", "src/cli.ts"]');
  });
});

describe('docker-compose.yml sink service', () => {
  const sink = serviceBlock(read('docker-compose.yml'), 'sink');

  it('exists', () => {
    expect(sink.length).toBeGreaterThan(0);
  });

  it('runs as a numeric non-root user', () => {
    expect(isNonRootUser(serviceKey(sink, 'user').value)).toBe(true);
  });

  it('has a read-only root filesystem, with /tmp in memory', () => {
    expect(serviceKey(sink, 'read_only').value).toBe('true');
    expect(serviceKey(sink, 'tmpfs').items.some((t) => t === '/tmp' || t.startsWith('/tmp:'))).toBe(true);
    expect(sink.some((l) => /^ {4}volumes:/.test(l))).toBe(false);
  });

  it('drops every capability and forbids privilege escalation', () => {
    expect(serviceKey(sink, 'cap_drop').items).toEqual(['ALL']);
    expect(serviceKey(sink, 'security_opt').items).toContain('no-new-privileges:true');
    expect(sink.some((l) => /^ {4}(privileged|cap_add):/.test(l))).toBe(false);
  });
});
