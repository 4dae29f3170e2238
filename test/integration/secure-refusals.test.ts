/**
 * What will not fix itself ends the process at once, with exit code 2 and one line on stderr naming
 * the dependency, the setting(s) to look at and the server's own reason (issue 10, items 3 and 4):
 * the real `tow-and-go` process against the stack's secured listeners, the real registry behind an
 * https + basic-auth front, and S3Proxy. Each refusal must come within 30 s (kafkajs alone retries
 * an unknown CA for ~40 s); they run side by side. A dependency that is only down at start (S3 on a
 * closed port) is not a refusal: the service starts, stays not ready and stays up.
 *
 * Nothing printed by any of these runs may hold a secret, the wrong ones included.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  closedPort,
  consume,
  expectNoSecret,
  forward,
  mtlsEnv,
  oauthEnv,
  pemBodyLines,
  type RegistryFront,
  runCli,
  S3_KEYS,
  type SecureFixtures,
  saslEnv,
  spawned,
  startSecureFixtures,
} from '../support/secure-service.ts';
import {
  CLIENT_KEY_PEM,
  NO_READ_USER,
  OAUTH_SUBJECT,
  OTHER_CA_PEM,
  OTHER_CLIENT_CERT_PEM,
  OTHER_CLIENT_KEY_PEM,
  USER,
  WRONG_SERVERNAME,
} from '../support/secure-stack.ts';
import { createTopics, type TestEnv, testEnv, waitFor } from '../support/stack.ts';
import type { TlsFixtures } from '../support/tls-fixtures.ts';
import type { TokenEndpoint } from '../support/token-endpoint.ts';

const WITHIN_MS = 30_000;
const S3_PORT = 9000;
const WRONG_PASSWORD = `wrong-password-${randomBytes(8).toString('hex')}`;
const OAUTH_SECRET = `oauth-secret-${randomBytes(8).toString('hex')}`;
const WRONG_OAUTH_SECRET = `wrong-oauth-secret-${randomBytes(8).toString('hex')}`;
const REGISTRY_USER = 'tow-and-go-registry';
const REGISTRY_PASSWORD = `registry-pw-${randomBytes(8).toString('hex')}`;
const WRONG_REGISTRY_PASSWORD = `wrong-registry-pw-${randomBytes(8).toString('hex')}`;
const SNAPSHOT = `${JSON.stringify({ last_modified: 1_684_216_515, tow_and_go: [{ link_id: 1, segment_id: null }] })}\n`;

let t: TestEnv;
let secure: SecureFixtures;
let tokens: TokenEndpoint;
let fixtures: TlsFixtures;
let front: RegistryFront;
const timings: Record<string, number> = {};

beforeAll(async () => {
  t = testEnv('sec-refused');
  await createTopics(t, 2);
  secure = await startSecureFixtures(OAUTH_SECRET, REGISTRY_USER, REGISTRY_PASSWORD);
  ({ tokens, fixtures, front } = secure);
});

afterAll(async () => {
  await secure.close();
  console.log(JSON.stringify({ secureRefusalsMs: timings }));
});

/** The exit, bounded: a process still running after the bound is killed and reported as such. */
async function exitOf(run: CliProcess): Promise<{ code: number | null | 'still running'; ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<{ code: 'still running'; ms: number }>((resolve) => {
    timer = setTimeout(() => resolve({ code: 'still running', ms: WITHIN_MS }), WITHIN_MS + 5000);
  });
  const result = await Promise.race([run.exited, bound]);
  clearTimeout(timer);
  if (result.code === 'still running') run.child.kill('SIGKILL');
  return result;
}

const kafka = (refused: string, problem: string, check: string, reason: string) =>
  `tow-and-go: kafka refused ${refused}: ${problem} (check ${check}): ${reason}`;
const SCRAM_LINE = kafka(
  'the connection',
  'authentication failed',
  'KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD / KAFKA_SASL_MECHANISM',
  'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
);

/** Each case: how the process is started, and the one line it must print. */
const CASES: ReadonlyArray<readonly [string, () => CliProcess, () => string]> = [
  ['a wrong password (consume)', () => consume(t, saslEnv('scram-sha-512', { username: USER.username, password: WRONG_PASSWORD })), () => SCRAM_LINE],
  [
    'a wrong password (publish)',
    () => runCli(['publish', '-'], { ...t.env, ...saslEnv('scram-sha-512', { username: USER.username, password: WRONG_PASSWORD }) }, SNAPSHOT),
    () => SCRAM_LINE,
  ],
  [
    'an unknown CA',
    () => consume(t, { ...saslEnv('scram-sha-512'), KAFKA_SSL_CA_FILE: OTHER_CA_PEM }),
    () =>
      kafka(
        'the connection',
        "the server's TLS certificate is not trusted",
        'KAFKA_SSL_CA_FILE',
        'SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain',
      ),
  ],
  [
    'a wrong server name',
    () => consume(t, { ...saslEnv('scram-sha-512'), KAFKA_SSL_SERVERNAME: WRONG_SERVERNAME }),
    () =>
      kafka(
        'the connection',
        "the server's TLS certificate does not name the host",
        'KAFKA_SSL_SERVERNAME / KAFKA_BROKERS',
        `ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: Host: ${WRONG_SERVERNAME}. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1`,
      ),
  ],
  [
    'a client certificate the mTLS listener does not trust',
    () => consume(t, { ...mtlsEnv(), KAFKA_SSL_CERT_FILE: OTHER_CLIENT_CERT_PEM, KAFKA_SSL_KEY_FILE: OTHER_CLIENT_KEY_PEM }),
    () =>
      kafka(
        'the connection',
        'the server refused the TLS handshake',
        "KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE / KAFKA_BROKERS / KAFKA_SSL / the server's TLS settings",
        'ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_UNKNOWN: ssl/tls alert certificate unknown (SSL alert number 46)',
      ),
  ],
  [
    'a user without READ on the topic (no-read: the first fetch)',
    () => consume(t, saslEnv('scram-sha-512', NO_READ_USER)),
    () =>
      kafka(
        `access to topic ${t.topic}`,
        'not authorized',
        "KAFKA_TOPIC / this client's ACLs: READ and DESCRIBE on the topic",
        'TOPIC_AUTHORIZATION_FAILED: Not authorized to access topics: [Topic authorization failed]',
      ),
  ],
  [
    'a group the ACLs do not allow',
    () => consume(t, { ...saslEnv('scram-sha-512'), KAFKA_GROUP_ID: `not-allowed-${t.topic}` }),
    () =>
      kafka(
        `access to group not-allowed-${t.topic}`,
        'not authorized',
        "KAFKA_GROUP_ID / this client's ACLs: READ on the group",
        'GROUP_AUTHORIZATION_FAILED: Not authorized to access group: Group authorization failed',
      ),
  ],
  [
    'an OAuth client secret the token endpoint refuses',
    () => consume(t, oauthEnv(tokens.url, OAUTH_SUBJECT, WRONG_OAUTH_SECRET)),
    () =>
      kafka(
        'the connection',
        'the OAuth token endpoint refused the client',
        'KAFKA_SASL_OAUTHBEARER_CLIENT_ID / KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET',
        `token endpoint ${tokens.url} answered HTTP 401 invalid_client (Client authentication failed)`,
      ),
  ],
  [
    'a wrong registry password (behind https + basic auth)',
    () =>
      consume(t, {
        ...saslEnv('scram-sha-512'),
        SCHEMA_REGISTRY_URL: front.url,
        SCHEMA_REGISTRY_CA_FILE: fixtures.caFile,
        SCHEMA_REGISTRY_USERNAME: REGISTRY_USER,
        SCHEMA_REGISTRY_PASSWORD: WRONG_REGISTRY_PASSWORD,
      }),
    () =>
      'tow-and-go: schema registry refused the request: authentication failed (check SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD): HTTP 401 on GET /schemas/types: Unauthorized',
  ],
  [
    'a missing bucket',
    () => consume(t, { ...saslEnv('scram-sha-512'), S3_BUCKET: `missing-${t.topic}` }),
    () => `tow-and-go: s3 refused the bucket missing-${t.topic}: it does not exist (check S3_BUCKET / S3_ENDPOINT): HeadBucket: HTTP 404 NotFound`,
  ],
];

describe.concurrent('refused at start: exit 2 with one line', () => {
  it.each(CASES)('%s', async (name, start, expected) => {
    const run = start();
    const { code, ms } = await exitOf(run);
    timings[name] = ms;
    expect(code, `${run.stdout()}\n${run.stderr()}`).toBe(2);
    expect(ms).toBeLessThan(WITHIN_MS);
    expect(
      run
        .stderr()
        .split('\n')
        .filter((l) => l !== ''),
    ).toEqual([expected()]);
  });

  it('S3 down at start (S3_ENDPOINT on a closed port) is not a refusal: it starts, stays not ready and up, and is ready once S3 answers', async () => {
    const port = await closedPort();
    const run = consume(t, { ...saslEnv('scram-sha-512'), ...S3_KEYS, S3_ENDPOINT: `http://127.0.0.1:${port}`, KAFKA_GROUP_ID: `${t.group}-s3-down` });
    const http = await run.httpPort();
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${http}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const until = Date.now() + 6000;
    const answers: Array<{ status: number; body: unknown }> = [];
    while (Date.now() < until) {
      answers.push(await readyz());
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(run.child.exitCode).toBeNull();
    expect(answers.length).toBeGreaterThan(5);
    expect(answers.every((a) => a.status === 503)).toBe(true);
    expect(answers.at(-1)?.body).toMatchObject({ live: true, ready: false, joined: true, waitingFor: ['s3'] });
    const warnings = run
      .stdout()
      .split('\n')
      .filter((l) => l.includes('did not answer the start-up check'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('"dependency":"s3"');
    expect(warnings[0]).toContain('ECONNREFUSED');

    // S3 comes up on that port: the next check (at most 10 s later) finds it, and the service is ready.
    const s3 = await forward(port, S3_PORT);
    try {
      await waitFor('ready once S3 answers', async () => (await readyz()).status === 200, 20_000, 250);
      expect((await readyz()).body).toMatchObject({ ready: true, waitingFor: [] });
    } finally {
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
      await s3.close();
    }
    expect(run.stderr()).toBe('');
  });
});

describe('secrets', () => {
  it('appear in no line printed by any of these runs, the wrong ones included', () => {
    const secrets = [
      USER.password,
      NO_READ_USER.password,
      WRONG_PASSWORD,
      OAUTH_SECRET,
      WRONG_OAUTH_SECRET,
      REGISTRY_PASSWORD,
      WRONG_REGISTRY_PASSWORD,
      Buffer.from(`${REGISTRY_USER}:${WRONG_REGISTRY_PASSWORD}`).toString('base64'),
      S3_KEYS.S3_SECRET_ACCESS_KEY,
      ...pemBodyLines(CLIENT_KEY_PEM),
      ...pemBodyLines(OTHER_CLIENT_KEY_PEM),
    ];
    const texts = new Map<string, string>();
    spawned.forEach((p, i) => {
      texts.set(`stdout of run ${i}`, p.stdout());
      texts.set(`stderr of run ${i}`, p.stderr());
    });
    expect(spawned.length).toBe(CASES.length + 1);
    expectNoSecret(texts, secrets);
  });
});
