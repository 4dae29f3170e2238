/**
 * The start-up checks: how each answer of the registry and of S3 is classified (ok, down, refused),
 * how the checks run (in parallel, bounded, the first refusal thrown), and the registry and S3
 * checks against real local servers (https with a private CA and basic auth; an S3 that refuses
 * HeadBucket). Kafka's check runs against the real broker in test/integration/secure-*.test.ts.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DependencyRefusedError } from '../../src/errors.ts';
import {
  type Check,
  kafkaOutcome,
  type Outcome,
  recheckUntilAnswered,
  registryCheck,
  registryOutcome,
  runCheck,
  s3Check,
  s3Outcome,
  startupChecks,
} from '../../src/preflight.ts';
import { createS3Client } from '../../src/sink/s3.ts';
import { createErrorFromCode, UNKNOWN_TOPIC_OR_PARTITION } from '../support/kafkajs-wire.ts';
import { rejectionOf } from '../support/thrown.ts';
import { makeTlsFixtures, type TlsFixtures } from '../support/tls-fixtures.ts';

const GROUP_AUTHORIZATION_FAILED = 30;

function lineOf(outcome: Outcome): string {
  if (outcome.state !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(outcome)}`);
  return outcome.error.message;
}

/** An S3 SDK error as the SDK builds one from a response. */
function s3Error(status: number | undefined, name: string, message = 'UnknownError', extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name, ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }), ...extra });
}

const bucket = { bucket: 'tow-and-go', prefix: 'snapshots/' };

describe('registryOutcome', () => {
  it.each([200, 204])('HTTP %i is ok', (status) => {
    expect(registryOutcome({ status, body: '["AVRO"]' })).toEqual({ state: 'ok' });
  });

  it('401: the credentials, with the registry’s message and never the password', () => {
    const outcome = registryOutcome({ status: 401, body: JSON.stringify({ error_code: 40101, message: 'bad password s3cret-pw for user' }) }, ['s3cret-pw']);
    expect(lineOf(outcome)).toBe(
      'schema registry refused the request: authentication failed (check SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD): HTTP 401 on GET /schemas/types: bad password <redacted> for user',
    );
    expect(lineOf(registryOutcome({ status: 403, body: '<html>' }))).toBe(
      'schema registry refused the request: not authorized (check SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD): HTTP 403 on GET /schemas/types',
    );
  });

  it.each([404, 302, 400])('HTTP %i: SCHEMA_REGISTRY_URL is not the API’s base', (status) => {
    expect(lineOf(registryOutcome({ status }))).toBe(
      `schema registry refused the request: no Confluent-compatible registry API at this URL (check SCHEMA_REGISTRY_URL): HTTP ${status} on GET /schemas/types`,
    );
  });

  it.each([408, 429, 500, 503])('HTTP %i is down', (status) => {
    expect(registryOutcome({ status })).toEqual({ state: 'down', reason: `HTTP ${status} on GET /schemas/types` });
  });

  it('no answer is down; a certificate it cannot trust is refused', () => {
    expect(registryOutcome({ error: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) })).toEqual({
      state: 'down',
      reason: 'ECONNREFUSED',
    });
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError', cause: Object.assign(new Error('t'), { name: 'TimeoutError' }) });
    expect(registryOutcome({ error: abort })).toEqual({ state: 'down', reason: 'no answer in time' });
    expect(
      lineOf(registryOutcome({ error: Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }) })),
    ).toBe(
      "schema registry refused the connection: the server's TLS certificate is not trusted (check SCHEMA_REGISTRY_CA_FILE): UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate",
    );
  });
});

describe('s3Outcome', () => {
  it('HeadBucket 404: the bucket does not exist', () => {
    expect(lineOf(s3Outcome(s3Error(404, 'NotFound'), bucket, 'HeadBucket'))).toBe(
      's3 refused the bucket tow-and-go: it does not exist (check S3_BUCKET / S3_ENDPOINT): HeadBucket: HTTP 404 NotFound',
    );
  });

  it('301 and a region mismatch: the region or the endpoint', () => {
    expect(lineOf(s3Outcome(s3Error(301, 'PermanentRedirect'), bucket, 'HeadBucket'))).toBe(
      's3 refused the bucket tow-and-go: it is in another region or on another endpoint (check S3_REGION / S3_ENDPOINT): HeadBucket: HTTP 301 PermanentRedirect',
    );
    const malformed = s3Error(400, 'AuthorizationHeaderMalformed', "the region 'us-east-1' is wrong; expecting 'eu-west-1'", {
      Code: 'AuthorizationHeaderMalformed',
    });
    expect(lineOf(s3Outcome(malformed, bucket, 'GetObject'))).toContain(
      '(check S3_REGION / S3_ENDPOINT): GetObject: HTTP 400 AuthorizationHeaderMalformed: the region',
    );
  });

  it('a credentials code on the read probe: the credentials; AccessDenied: ok, with a warning', () => {
    const signature = s3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.', {
      Code: 'SignatureDoesNotMatch',
    });
    expect(lineOf(s3Outcome(signature, bucket, 'GetObject'))).toBe(
      's3 refused the request: the credentials were not accepted (check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY / the AWS credential chain): ' +
        'GetObject: HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.',
    );
    const denied = s3Outcome(s3Error(403, 'AccessDenied', 'Access Denied', { Code: 'AccessDenied' }), bucket, 'GetObject');
    expect(denied.state).toBe('ok');
    expect(denied.state === 'ok' ? denied.note : '').toContain('without s3:ListBucket the start-up check cannot prove access to bucket tow-and-go');
  });

  it('GetObject 404: NoSuchKey is ok, NoSuchBucket is refused', () => {
    expect(s3Outcome(s3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Code: 'NoSuchKey' }), bucket, 'GetObject')).toEqual({ state: 'ok' });
    expect(s3Outcome(s3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { Code: 'NoSuchBucket' }), bucket, 'GetObject').state).toBe('refused');
  });

  it('no credentials at all are refused; a certificate it cannot trust too', () => {
    const none = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    expect(lineOf(s3Outcome(none, bucket, 'HeadBucket'))).toBe(
      's3 refused the request: no AWS credentials found (check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY / the AWS credential chain): CredentialsProviderError: Could not load credentials from any providers',
    );
    const tls = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    expect(lineOf(s3Outcome(tls, bucket, 'HeadBucket'))).toContain('(check S3_ENDPOINT / NODE_EXTRA_CA_CERTS)');
  });

  it.each([
    ['503', s3Error(503, 'ServiceUnavailable'), 'HeadBucket: HTTP 503 ServiceUnavailable'],
    ['429', s3Error(429, 'SlowDown'), 'HeadBucket: HTTP 429 SlowDown'],
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
      'connect ECONNREFUSED 127.0.0.1:9 (ECONNREFUSED)',
    ],
    ['the timeout', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'no answer in time'],
  ])('%s is down', (_, error, reason) => {
    expect(s3Outcome(error, bucket, 'HeadBucket')).toEqual({ state: 'down', reason });
  });
});

describe('kafkaOutcome', () => {
  const group = { name: 'forbidden', setting: 'KAFKA_GROUP_ID', operations: 'READ' };

  it('reads the broker’s answer that kafkajs swallowed in FindCoordinator', () => {
    // kafkajs' class, as cluster/index.js throws it.
    const thrown = Object.assign(new Error('Failed to find group coordinator'), { name: 'KafkaJSGroupCoordinatorNotFound', retriable: false });
    expect(lineOf(kafkaOutcome(thrown, { mechanism: 'none', group }, [createErrorFromCode(GROUP_AUTHORIZATION_FAILED)]))).toBe(
      "kafka refused access to group forbidden: not authorized (check KAFKA_GROUP_ID / this client's ACLs: READ on the group): " +
        'GROUP_AUTHORIZATION_FAILED: Not authorized to access group: Group authorization failed',
    );
    // Without it, the coordinator may just be moving: down.
    expect(kafkaOutcome(thrown, { mechanism: 'none', group }, [])).toEqual({ state: 'down', reason: 'Failed to find group coordinator' });
  });

  it('a missing topic is down (it may be created), naming its setting', () => {
    const topic = { name: 'it-x', setting: 'KAFKA_TOPIC', operations: 'READ and DESCRIBE' };
    expect(kafkaOutcome(createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION), { mechanism: 'none', topic })).toEqual({
      state: 'down',
      reason: 'topic it-x (KAFKA_TOPIC) does not exist yet',
    });
  });
});

describe('running the checks', () => {
  const check = (dependency: Check['dependency'], run: () => Promise<Outcome>): Check => ({ dependency, run });
  const refusedBy = (dependency: Check['dependency']) =>
    check(dependency, async () => ({
      state: 'refused',
      error: new DependencyRefusedError({ dependency, refused: 'the request', problem: 'no', check: ['X'], reason: dependency }),
    }));

  function capture(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
    const out: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _, done) {
        out.push(chunk.toString('utf8'));
        done();
      },
    });
    return {
      log: pino({ level: 'info' }, stream),
      lines: () =>
        out
          .join('')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
    };
  }

  it('bounds each check: no answer in time, or a check that throws, is down', async () => {
    expect(
      await runCheck(
        check('s3', () => new Promise(() => undefined)),
        50,
      ),
    ).toEqual({ state: 'down', reason: 'no answer within 0.05 s' });
    expect(
      await runCheck(
        check('s3', () => Promise.reject(new Error('bug'))),
        50,
      ),
    ).toEqual({ state: 'down', reason: 'bug' });
  });

  it('runs all checks at once and throws the first refusal in the order given', async () => {
    const events: string[] = [];
    const slow = (dependency: Check['dependency']) =>
      check(dependency, async () => {
        events.push(`start ${dependency}`);
        await new Promise((r) => setTimeout(r, 50));
        events.push(`end ${dependency}`);
        return { state: 'ok' };
      });
    const { log } = capture();
    await startupChecks([slow('kafka'), slow('s3')], log);
    expect(events).toEqual(['start kafka', 'start s3', 'end kafka', 'end s3']);

    const error = await rejectionOf(startupChecks([check('kafka', async () => ({ state: 'ok' })), refusedBy('schema registry'), refusedBy('s3')], log));
    expect(error).toBeInstanceOf(DependencyRefusedError);
    expect((error as DependencyRefusedError).message).toBe('schema registry refused the request: no (check X): schema registry');
  });

  it('logs one warning per dependency that is down and returns its check', async () => {
    const { log, lines } = capture();
    const s3 = check('s3', async () => ({ state: 'down', reason: 'connect ECONNREFUSED' }));
    const down = await startupChecks([check('kafka', async () => ({ state: 'ok' })), s3], log);
    expect(down).toEqual([s3]);
    const warnings = lines().filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      dependency: 's3',
      reason: 'connect ECONNREFUSED',
      msg: 's3 did not answer the start-up check; starting anyway, not ready until it answers',
    });
  });

  it('asks a dependency that was down again until it answers, or refuses', async () => {
    vi.useFakeTimers();
    try {
      const { log } = capture();
      const answers: Outcome[] = [{ state: 'down', reason: 'a' }, { state: 'down', reason: 'b' }, { state: 'ok' }];
      const asked = vi.fn(async (): Promise<Outcome> => answers.shift() ?? { state: 'ok' });
      const answered = vi.fn();
      recheckUntilAnswered(check('s3', asked), { onAnswered: answered, onRefused: () => undefined }, log);
      await vi.advanceTimersByTimeAsync(1000 + 1000 + 2000);
      expect(asked).toHaveBeenCalledTimes(3);
      expect(answered).toHaveBeenCalledTimes(1);

      const onRefused = vi.fn();
      const r = recheckUntilAnswered(refusedBy('schema registry'), { onAnswered: answered, onRefused }, log);
      // Believed only when given REFUSALS_TO_BELIEVE times in a row (a registry booting answers 404 for a moment).
      await vi.advanceTimersByTimeAsync(1000 + 1000);
      expect(onRefused).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(2000);
      expect(onRefused).toHaveBeenCalledTimes(1);
      r.cancel();

      // A refusal between answers of "down" starts the count again; an answer after it ends the re-check.
      const states: Outcome['state'][] = ['refused', 'down', 'refused', 'refused', 'ok'];
      const flaky = vi.fn(async (): Promise<Outcome> => {
        const state = states.shift() ?? 'ok';
        if (state === 'refused') return (await refusedBy('schema registry').run()) as Outcome;
        return state === 'down' ? { state: 'down', reason: 'booting' } : { state: 'ok' };
      });
      const answeredLate = vi.fn();
      const onRefusedLate = vi.fn();
      recheckUntilAnswered(check('schema registry', flaky), { onAnswered: answeredLate, onRefused: onRefusedLate }, log);
      await vi.advanceTimersByTimeAsync(1000 + 1000 + 2000 + 4000 + 8000);
      expect(flaky).toHaveBeenCalledTimes(5);
      expect(onRefusedLate).not.toHaveBeenCalled();
      expect(answeredLate).toHaveBeenCalledTimes(1);

      const never = vi.fn(async (): Promise<Outcome> => ({ state: 'down', reason: 'x' }));
      recheckUntilAnswered(check('s3', never), { onAnswered: answered, onRefused }, log).cancel();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(never).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('registryCheck against a real https registry', () => {
  let f: TlsFixtures;
  let server: Server | undefined;
  const auth = `Basic ${Buffer.from('registry-key:registry-s3cret').toString('base64')}`;
  beforeAll(() => {
    f = makeTlsFixtures();
  });
  afterAll(() => f.remove());
  afterEach(() => {
    server?.closeAllConnections();
    server?.close();
    server = undefined;
  });

  async function start(): Promise<string> {
    server = createHttpsServer({ cert: f.read(f.serverCertFile), key: f.read(f.serverKeyFile) }, (req, res) => {
      if (req.headers.authorization !== auth) res.writeHead(401).end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }));
      else if (req.url === '/ccompat/schemas/types') res.end('["AVRO"]');
      else res.writeHead(404).end();
    });
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `https://127.0.0.1:${(server.address() as { port: number }).port}/ccompat`;
  }

  const settings = (url: string, password = 'registry-s3cret', ca = f.read(f.caFile)) => ({ url, username: 'registry-key', password, timeoutMs: 2000, ca });

  it('ok with the CA and the credentials; refused with another CA or a wrong password; down when closed', async () => {
    const url = await start();
    expect(await registryCheck(settings(url)).run()).toEqual({ state: 'ok' });
    expect(lineOf(await registryCheck(settings(url, 'wrong-password')).run())).toBe(
      'schema registry refused the request: authentication failed (check SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD): HTTP 401 on GET /schemas/types: Unauthorized',
    );
    expect(lineOf(await registryCheck(settings(url, 'registry-s3cret', f.read(f.otherCaFile))).run())).toContain(
      "schema registry refused the connection: the server's TLS certificate is not trusted (check SCHEMA_REGISTRY_CA_FILE)",
    );
    expect(lineOf(await registryCheck(settings(url.replace('127.0.0.1', 'localhost').replace('/ccompat', ''))).run())).toContain(
      'no Confluent-compatible registry API at this URL',
    );
    server?.closeAllConnections();
    server?.close();
    server = undefined;
    expect((await registryCheck(settings(url)).run()).state).toBe('down');
  });
});

describe('s3Check against an S3 that refuses HeadBucket', () => {
  let server: Server;
  let getAnswer = { status: 403, code: 'AccessDenied' };
  beforeAll(async () => {
    // HeadBucket gets a 403 without a body (as S3 answers it without s3:ListBucket); the read probe gets `getAnswer`.
    server = createHttpServer((req, res) => {
      if (req.method === 'HEAD') res.writeHead(403).end();
      else
        res
          .writeHead(getAnswer.status, { 'content-type': 'application/xml' })
          .end(`<Error><Code>${getAnswer.code}</Code><Message>from the fake</Message></Error>`);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterAll(() => server.close());

  function check() {
    const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const client = () =>
      createS3Client({
        bucket: 'b',
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'k', secretAccessKey: 's' },
        timeoutMs: 2000,
        onConflict: 'dlq',
      });
    return s3Check(client, { bucket: 'b', prefix: 'p/' });
  }

  it('AccessDenied on the read too: the credentials are good, start with a warning', async () => {
    getAnswer = { status: 403, code: 'AccessDenied' };
    const outcome = await check().run();
    expect(outcome.state).toBe('ok');
  });

  it('InvalidAccessKeyId on the read: refused, naming the credentials', async () => {
    getAnswer = { status: 403, code: 'InvalidAccessKeyId' };
    expect(lineOf(await check().run())).toBe(
      's3 refused the request: the credentials were not accepted (check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY / the AWS credential chain): GetObject: HTTP 403 InvalidAccessKeyId: from the fake',
    );
  });
});
