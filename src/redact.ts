/**
 * Keeping credentials out of what is printed: URL userinfo, and known secret values.
 */

/**
 * A URL may carry credentials (https://user:pass@host). The userinfo ends at the last `@` of the
 * authority, which ends at the first `/`, `?` or `#` (as WHATWG URL parses it), so a password may
 * itself contain `@`. The log keeps the scheme, host and path, never the pair.
 */
export function withoutUserInfo(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#\\]*@/i, '$1<redacted>@');
}

/**
 * For a value that failed to parse, where the authority cannot be trusted to end where a URL
 * parser would say: everything up to the last `@` anywhere is dropped, keeping a scheme prefix.
 * Without an `@`, a URL whose authority holds a `:` followed by anything but a port
 * (https://user:secret, the host forgotten) loses its authority too. An error line names the
 * variable and the reason; losing the rest of a bad value costs little.
 */
export function redactUserInfo(raw: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(raw)?.[0] ?? '';
  const at = raw.lastIndexOf('@');
  if (at >= 0) return `${scheme}<redacted>${raw.slice(at)}`;
  if (scheme === '') return raw;
  const authority = /^[^/?#\\]*/.exec(raw.slice(scheme.length))?.[0] ?? '';
  return /:(?!\d*$)/.test(authority.replace(/\[[^\]]*\]/, '')) ? `${scheme}<redacted>${raw.slice(scheme.length + authority.length)}` : raw;
}

/** Shorter values are left alone: replacing them would garble a line more than it protects anything. */
const MIN_SCRUBBED_CHARS = 4;

/** Every secret (longest first, so a secret that contains another goes whole) replaced wherever it appears. */
export function scrub(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of [...new Set(secrets)].sort((a, b) => b.length - a.length)) {
    if (secret.length >= MIN_SCRUBBED_CHARS) out = out.replaceAll(secret, '<redacted>');
  }
  return out;
}

/** The password of a URL's userinfo, as typed, percent-decoded and as a URL parser re-encodes it; none without one. */
export function urlPasswords(value: string): string[] {
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#\\]*)@/i.exec(value)?.[1];
  const colon = userinfo?.indexOf(':') ?? -1;
  if (userinfo === undefined || colon < 0) return [];
  const typed = userinfo.slice(colon + 1);
  const forms = [typed];
  try {
    forms.push(decodeURIComponent(typed));
  } catch {
    // a stray % stays as typed
  }
  try {
    forms.push(new URL(value).password);
  } catch {
    // not a URL after all
  }
  return forms;
}
