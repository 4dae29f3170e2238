/**
 * Settings that name a PEM file: a CA bundle, a client certificate, a private key. Each file is read
 * once, while the configuration is parsed, so a missing or unreadable file is a configuration error
 * that names its setting (exit 2) instead of a TLS failure at the first connection.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { z } from 'zod';

/**
 * A file's path and contents. The contents (a private key, possibly) sit in a private field and
 * serialise as the path alone, so a config object that reaches a log line, JSON.stringify or
 * util.inspect shows where the key is, never the key.
 */
export class PemFile {
  readonly path: string;
  readonly #contents: Buffer;

  constructor(path: string, contents: Buffer) {
    this.path = path;
    this.#contents = contents;
  }

  get contents(): Buffer {
    return this.#contents;
  }

  toJSON(): string {
    return this.path;
  }

  [inspect.custom](): string {
    return `PemFile(${this.path})`;
  }
}

export type PemKind = 'certificate' | 'private key';

/** What each kind of PEM file must contain: "-----BEGIN CERTIFICATE-----", or "… PRIVATE KEY-----" (PKCS#8, RSA, EC, encrypted). */
const MARKERS: Readonly<Record<PemKind, string>> = { certificate: '-----BEGIN CERTIFICATE-----', 'private key': 'PRIVATE KEY-----' };

/**
 * A path (empty: unset) read into a PemFile. Its problems name the file and why, never its
 * contents; a value that is itself PEM text (pasted instead of a path) is refused without echoing it.
 */
export function pemFile(kind: PemKind) {
  return z.string().transform((path, ctx): PemFile | undefined => {
    if (path === '') return undefined;
    if (looksLikePem(path)) {
      ctx.addIssue({ code: 'custom', message: `expected the path of a PEM ${kind} file, not the PEM text itself` });
      return z.NEVER;
    }
    let contents: Buffer;
    try {
      contents = readFileSync(path);
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'unreadable';
      ctx.addIssue({ code: 'custom', message: `cannot read the file (${code})` });
      return z.NEVER;
    }
    if (!contents.includes(MARKERS[kind])) {
      ctx.addIssue({ code: 'custom', message: `not a PEM ${kind} (no "${MARKERS[kind]}" line)` });
      return z.NEVER;
    }
    // OpenSSL skips a CA block it cannot parse without a word, and then trusts nothing: say so now.
    const invalid = kind === 'certificate' ? certificateProblem(contents) : undefined;
    if (invalid !== undefined) {
      ctx.addIssue({ code: 'custom', message: `not a valid PEM certificate (${invalid})` });
      return z.NEVER;
    }
    return new PemFile(path, contents);
  });
}

/** Why the first certificate of a PEM file does not parse; undefined when it does. */
function certificateProblem(contents: Buffer): string | undefined {
  try {
    new X509Certificate(contents);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** PEM text where a path or a word was expected: it may be a private key, so it is never echoed. */
export function looksLikePem(value: string): boolean {
  return value.includes('-----BEGIN');
}
