/**
 * Which Kafka failures are refusals (exit 2, one line) and which may pass (retry), with the errors
 * built the way kafkajs 2.2.4 builds them: its own classes, its protocol error table, and its
 * retrier's wrapping (KafkaJSNumberOfRetriesExceeded around a retried connection error,
 * KafkaJSNonRetriableError around a bailed protocol error). Each shape below was seen against the
 * stack's secured listeners (src/refusals.ts).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DependencyRefusedError, oneLine } from '../../src/errors.ts';
import { isPermanentKafkaError, type KafkaScope, kafkaRefusal } from '../../src/refusals.ts';
import { TokenError } from '../../src/source/token-cache.ts';
import { createErrorFromCode, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION } from '../support/kafkajs-wire.ts';

/** kafkajs' error classes as it constructs them (its typings leave out the options and some classes). */
type KafkaJSErrorClass = new (message: string | Error, options?: Record<string, unknown>) => Error;
const kafkajsErrors = createRequire(import.meta.url)('kafkajs/src/errors.js') as Record<string, KafkaJSErrorClass>;
const errorClass = (name: string): KafkaJSErrorClass => {
  const found = kafkajsErrors[name];
  if (found === undefined) throw new Error(`kafkajs has no ${name}`);
  return found;
};
const KafkaJSConnectionClosedError = errorClass('KafkaJSConnectionClosedError');
const KafkaJSConnectionError = errorClass('KafkaJSConnectionError');
const KafkaJSGroupCoordinatorNotFound = errorClass('KafkaJSGroupCoordinatorNotFound');
const KafkaJSNonRetriableError = errorClass('KafkaJSNonRetriableError');
const KafkaJSNumberOfRetriesExceeded = errorClass('KafkaJSNumberOfRetriesExceeded');
const KafkaJSSASLAuthenticationError = errorClass('KafkaJSSASLAuthenticationError');

const GROUP_AUTHORIZATION_FAILED = 30;
const ILLEGAL_SASL_STATE = 34;
const REBALANCE_IN_PROGRESS = 27;

const scope: KafkaScope = {
  mechanism: 'scram-sha-512',
  topic: { name: 'it-topic', setting: 'KAFKA_TOPIC', operations: 'READ and DESCRIBE' },
  group: { name: 'it-group', setting: 'KAFKA_GROUP_ID', operations: 'READ' },
};

/** A retried failure, as kafkajs' retrier gives up on it. */
function retried(error: Error): Error {
  return new KafkaJSNumberOfRetriesExceeded(error, { retryCount: 5, retryTime: 1000 });
}

/** A connection error with Node's TLS code, as connection.js builds it. */
function tlsError(code: string, message: string): Error {
  return new KafkaJSConnectionError(`Connection error: ${message}`, { broker: '127.0.0.1:9094', code });
}

function line(error: unknown, s: KafkaScope = scope): string | undefined {
  return kafkaRefusal(error, s)?.message;
}

describe('kafkaRefusal', () => {
  it('a wrong SCRAM password: the credentials settings and the broker’s own words', () => {
    const error = new KafkaJSSASLAuthenticationError(
      'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
    );
    expect(line(error)).toBe(
      'kafka refused the connection: authentication failed (check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD / KAFKA_SASL_MECHANISM): ' +
        'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
    );
    const refusal = kafkaRefusal(error, scope);
    expect(refusal).toBeInstanceOf(DependencyRefusedError);
    expect(refusal?.code).toBe('DEPENDENCY_REFUSED');
    expect(refusal?.retryable).toBe(false);
    expect(refusal?.cause).toBe(error);
  });

  it.each([
    ['plain', 'KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD / KAFKA_SASL_MECHANISM'],
    ['oauthbearer', "KAFKA_SASL_MECHANISM / KAFKA_SASL_OAUTHBEARER_TOKEN_URL / KAFKA_SASL_OAUTHBEARER_SCOPE / the broker's token validation"],
    ['aws-msk-iam', 'the AWS credentials (role or AWS_* variables) / KAFKA_SASL_AWS_REGION / KAFKA_SASL_MECHANISM'],
  ] as const)('a refused login with %s names that mechanism’s settings', (mechanism, settings) => {
    // A token the broker does not accept: kafkajs gets ILLEGAL_SASL_STATE at the next request.
    expect(line(createErrorFromCode(ILLEGAL_SASL_STATE), { mechanism })).toBe(
      `kafka refused the connection: authentication failed (check ${settings}): ILLEGAL_SASL_STATE: Request is not valid given the current SASL state`,
    );
  });

  it('a client secret the token endpoint refuses: the settings it names, no secret', () => {
    const error = new TokenError(
      'KAFKA_SASL_OAUTHBEARER_CLIENT_ID/KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: token endpoint http://127.0.0.1:1/oauth2/token answered HTTP 401 invalid_client (Client authentication failed)',
      false,
    );
    expect(line(error, { mechanism: 'oauthbearer' })).toBe(
      'kafka refused the connection: the OAuth token endpoint refused the client (check KAFKA_SASL_OAUTHBEARER_CLIENT_ID / KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET): ' +
        'token endpoint http://127.0.0.1:1/oauth2/token answered HTTP 401 invalid_client (Client authentication failed)',
    );
    // An endpoint that is down is retried like a broker outage.
    expect(isPermanentKafkaError(new TokenError('KAFKA_SASL_OAUTHBEARER_TOKEN_URL: token endpoint x got no answer: ECONNREFUSED', true))).toBe(false);
  });

  it('an unknown CA, retried by kafkajs as a connection error, is a refusal naming KAFKA_SSL_CA_FILE', () => {
    const error = retried(tlsError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'));
    expect(line(error)).toBe(
      "kafka refused the connection: the server's TLS certificate is not trusted (check KAFKA_SSL_CA_FILE): SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain",
    );
    expect(isPermanentKafkaError(error)).toBe(true);
    expect(isPermanentKafkaError(tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'))).toBe(true);
  });

  it('a certificate without the server name names KAFKA_SSL_SERVERNAME and KAFKA_BROKERS', () => {
    const message =
      "Hostname/IP does not match certificate's altnames: Host: wrong.example. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1";
    expect(line(retried(tlsError('ERR_TLS_CERT_ALTNAME_INVALID', message)))).toBe(
      `kafka refused the connection: the server's TLS certificate does not name the host (check KAFKA_SSL_SERVERNAME / KAFKA_BROKERS): ERR_TLS_CERT_ALTNAME_INVALID: ${message}`,
    );
  });

  it('an expired certificate is a refusal too', () => {
    expect(line(tlsError('CERT_HAS_EXPIRED', 'certificate has expired'))).toBe(
      "kafka refused the connection: the server's TLS certificate has expired or is not valid yet (check the server's certificate / this host's clock): CERT_HAS_EXPIRED: certificate has expired",
    );
  });

  it('a client certificate the broker refuses: the OpenSSL error reduced to one line', () => {
    const openssl =
      '40ADA2B2EA7F0000:error:0A000412:SSL routines:ssl3_read_bytes:ssl/tls alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:SSL alert number 42\n';
    const text = line(retried(tlsError('ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE', openssl)));
    expect(text).toBe(
      "kafka refused the connection: the server refused the TLS handshake (check KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE / KAFKA_BROKERS / KAFKA_SSL / the server's TLS settings): " +
        'ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE: ssl/tls alert bad certificate (SSL alert number 42)',
    );
  });

  it('no READ on the topic (the first fetch, bailed by kafkajs) names the topic and its setting', () => {
    const crash = new KafkaJSNonRetriableError(createErrorFromCode(TOPIC_AUTHORIZATION_FAILED), { cause: createErrorFromCode(TOPIC_AUTHORIZATION_FAILED) });
    expect(line(crash)).toBe(
      "kafka refused access to topic it-topic: not authorized (check KAFKA_TOPIC / this client's ACLs: READ and DESCRIBE on the topic): " +
        'TOPIC_AUTHORIZATION_FAILED: Not authorized to access topics: [Topic authorization failed]',
    );
  });

  it('no access to the group names the group and its setting', () => {
    expect(line(createErrorFromCode(GROUP_AUTHORIZATION_FAILED))).toBe(
      "kafka refused access to group it-group: not authorized (check KAFKA_GROUP_ID / this client's ACLs: READ on the group): " +
        'GROUP_AUTHORIZATION_FAILED: Not authorized to access group: Group authorization failed',
    );
  });

  it.each([
    ['a refused connection', retried(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9', { code: 'ECONNREFUSED' }))],
    ['a reset connection', new KafkaJSConnectionError('Connection error: Client network socket disconnected', { code: 'ECONNRESET' })],
    ['a connection the broker closed', new KafkaJSConnectionClosedError('Closed connection', { host: '127.0.0.1', port: 9094 })],
    ['a timeout', new KafkaJSConnectionError('Connection timeout', { broker: '127.0.0.1:9094' })],
    ['a missing topic', createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION)],
    ['a rebalance', createErrorFromCode(REBALANCE_IN_PROGRESS)],
    ['a coordinator kafkajs could not find', new KafkaJSGroupCoordinatorNotFound('Failed to find group coordinator')],
    ['a bug', new TypeError('x is undefined')],
    ['not an error at all', 'boom'],
  ])('%s may pass: not a refusal', (_, error) => {
    expect(kafkaRefusal(error, scope)).toBeUndefined();
    expect(isPermanentKafkaError(error)).toBe(false);
  });

  it('leaves a refusal as it is', () => {
    const refusal = kafkaRefusal(createErrorFromCode(GROUP_AUTHORIZATION_FAILED), scope);
    expect(kafkaRefusal(refusal, { mechanism: 'none' })).toBe(refusal);
  });
});

describe('oneLine', () => {
  it('joins lines and bounds the length', () => {
    expect(oneLine('  a\n  b\r\n\tc ')).toBe('a b c');
    const long = oneLine('x'.repeat(1000));
    expect(long).toHaveLength(300);
    expect(long.endsWith('…')).toBe(true);
  });
});
