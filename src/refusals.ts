/**
 * Which failures will not fix themselves, and what to tell the operator about them: the one
 * classification behind the start-up checks (preflight.ts), the consumer's restart decisions
 * (source/consumer.ts) and the CLI's exit code 2.
 *
 * What the real broker (Kafka 4, the stack's SASL_SSL and mTLS listeners) and kafkajs 2.2.4 answer:
 * - a wrong SCRAM or PLAIN password: KafkaJSSASLAuthenticationError, at connect, not retriable;
 * - a token the broker does not accept (OAUTHBEARER), or SASL against a listener without it:
 *   the protocol error ILLEGAL_SASL_STATE, at connect or at the first request (kafkajs does not
 *   read the broker's OAUTHBEARER error challenge);
 * - a token endpoint that refuses the client secret: our own TokenError, not retryable;
 * - an unknown CA, a wrong server name, an expired certificate: KafkaJSConnectionError with Node's
 *   TLS code (SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, CERT_HAS_EXPIRED…), which
 *   kafkajs calls retriable and retries for ~40 s, wrapped in KafkaJSNumberOfRetriesExceeded;
 * - a client certificate the broker refuses: the same, with an OpenSSL alert code
 *   (ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE, …_CERTIFICATE_UNKNOWN);
 * - a missing ACL: TOPIC_AUTHORIZATION_FAILED (metadata without DESCRIBE, a fetch without READ),
 *   GROUP_AUTHORIZATION_FAILED (kafkajs swallows it in FindCoordinator and throws
 *   KafkaJSGroupCoordinatorNotFound instead; preflight.ts recovers the broker's answer).
 * Everything else (refused or reset connections, timeouts, a coordinator moving, a missing topic)
 * may pass, and stays with the retry paths.
 */
import type { Config } from './config.ts';
import { causeChain, type Dependency, DependencyRefusedError, type Refusal } from './errors.ts';
import { TokenError } from './source/token-cache.ts';

/** A topic or group the check is about, the setting that names it, and the ACL operations it needs. */
export interface KafkaResource {
  readonly name: string;
  readonly setting: string;
  readonly operations: string;
}

export interface KafkaScope {
  readonly mechanism: Config['KAFKA_SASL_MECHANISM'];
  readonly topic?: KafkaResource | undefined;
  readonly group?: KafkaResource | undefined;
}

/** The refusal in `error` (or anywhere in its cause chain), or undefined when it may pass by itself. */
export function kafkaRefusal(error: unknown, scope: KafkaScope): DependencyRefusedError | undefined {
  if (error instanceof DependencyRefusedError) return error;
  for (const e of causeChain(error)) {
    const refusal = kafkaRefusalOf(e, scope);
    if (refusal !== undefined) return new DependencyRefusedError({ dependency: 'kafka', ...refusal }, { cause: error });
  }
  return undefined;
}

/** Whether retrying `error` is pointless (authentication, authorization, TLS verification). */
export function isPermanentKafkaError(error: unknown): boolean {
  return kafkaRefusal(error, { mechanism: 'none' }) !== undefined;
}

type KafkaRefusal = Omit<Refusal, 'dependency'>;

function kafkaRefusalOf(e: unknown, scope: KafkaScope): KafkaRefusal | undefined {
  if (!(e instanceof Error)) return undefined;
  if (e instanceof TokenError) return e.retryable ? undefined : tokenRefusal(e);
  const type = (e as { type?: unknown }).type;
  if (
    e.name === 'KafkaJSSASLAuthenticationError' ||
    type === 'SASL_AUTHENTICATION_FAILED' ||
    type === 'ILLEGAL_SASL_STATE' ||
    type === 'UNSUPPORTED_SASL_MECHANISM'
  ) {
    return { refused: 'the connection', problem: 'authentication failed', check: saslSettings(scope.mechanism), reason: protocolReason(e) };
  }
  if (type === 'TOPIC_AUTHORIZATION_FAILED') return aclRefusal('topic', scope.topic, protocolReason(e));
  if (type === 'GROUP_AUTHORIZATION_FAILED') return aclRefusal('group', scope.group, protocolReason(e));
  if (type === 'CLUSTER_AUTHORIZATION_FAILED') {
    return { refused: 'the request', problem: 'not authorized on the cluster', check: ["this client's ACLs on the cluster"], reason: protocolReason(e) };
  }
  const tls = tlsRefusal(e, KAFKA_TLS_SETTINGS);
  return tls === undefined ? undefined : { refused: 'the connection', ...tls };
}

/** What to look at when the broker refuses the login, per mechanism. */
function saslSettings(mechanism: KafkaScope['mechanism']): string[] {
  switch (mechanism) {
    case 'plain':
    case 'scram-sha-256':
    case 'scram-sha-512':
      return ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_MECHANISM'];
    case 'oauthbearer':
      // The token endpoint accepted the client (or this would be a TokenError): the broker refused its token.
      return ['KAFKA_SASL_MECHANISM', 'KAFKA_SASL_OAUTHBEARER_TOKEN_URL', 'KAFKA_SASL_OAUTHBEARER_SCOPE', "the broker's token validation"];
    case 'aws-msk-iam':
      return ['the AWS credentials (role or AWS_* variables)', 'KAFKA_SASL_AWS_REGION', 'KAFKA_SASL_MECHANISM'];
    case 'none':
      return ['KAFKA_SASL_MECHANISM', 'KAFKA_BROKERS'];
  }
}

function aclRefusal(kind: 'topic' | 'group', resource: KafkaResource | undefined, reason: string): KafkaRefusal {
  const setting = resource?.setting ?? (kind === 'topic' ? 'KAFKA_TOPIC' : 'KAFKA_GROUP_ID');
  const operations = resource?.operations ?? (kind === 'topic' ? 'READ and DESCRIBE' : 'READ');
  return {
    refused: resource === undefined ? `access to a ${kind}` : `access to ${kind} ${resource.name}`,
    problem: 'not authorized',
    check: [setting, `this client's ACLs: ${operations} on the ${kind}`],
    reason,
  };
}

/**
 * TokenError's message starts with the setting(s) to blame ("KAFKA_SASL_OAUTHBEARER_CLIENT_ID/
 * KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: token endpoint … answered HTTP 401 invalid_client (…)"),
 * and holds neither the secret nor a token (oauth.ts).
 */
function tokenRefusal(e: TokenError): KafkaRefusal {
  const m = /^([A-Z0-9_]+(?:\/[A-Z0-9_]+)*): (.*)$/s.exec(e.message);
  return {
    refused: 'the connection',
    problem: 'the OAuth token endpoint refused the client',
    check: m?.[1]?.split('/') ?? ['KAFKA_SASL_OAUTHBEARER_CLIENT_ID', 'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET'],
    reason: m?.[2] ?? e.message,
  };
}

/** "TOPIC_AUTHORIZATION_FAILED: Not authorized to access topics: [Topic authorization failed]". */
function protocolReason(e: Error): string {
  const type = (e as { type?: unknown }).type;
  return typeof type === 'string' && !e.message.includes(type) ? `${type}: ${e.message}` : e.message;
}

/** The settings a TLS failure points at, per dependency. */
export interface TlsSettings {
  /** Where the trusted CAs come from. */
  readonly ca: readonly string[];
  /** What sets the name the certificate must carry. */
  readonly name: readonly string[];
  /** What sets the client certificate, if the client has one. */
  readonly clientCertificate: readonly string[];
  /** What says where the server is and whether it speaks TLS. */
  readonly endpoint: readonly string[];
}

const KAFKA_TLS_SETTINGS: TlsSettings = {
  ca: ['KAFKA_SSL_CA_FILE'],
  name: ['KAFKA_SSL_SERVERNAME', 'KAFKA_BROKERS'],
  clientCertificate: ['KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'],
  endpoint: ['KAFKA_BROKERS', 'KAFKA_SSL'],
};

/** Node's codes for a certificate chain it cannot verify (OpenSSL's X509_V_ERR_* names). */
const UNTRUSTED_CODES: ReadonlySet<string> = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
]);
const EXPIRY_CODES: ReadonlySet<string> = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/**
 * A TLS failure that will not pass: the peer's certificate is untrusted, expired or names another
 * host, or the peer refused the handshake with an alert (most often: our client certificate). A
 * plain reset or a timeout is not one of these. `e.code` is Node's code, kept by kafkajs on its
 * KafkaJSConnectionError, by the AWS SDK and node:https on the error itself.
 */
export function tlsRefusal(e: unknown, s: TlsSettings): Omit<KafkaRefusal, 'refused'> | undefined {
  const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
  if (code === undefined) return undefined;
  const reason = `${code}: ${tlsMessage(e instanceof Error ? e.message : '')}`;
  if (UNTRUSTED_CODES.has(code)) return { problem: "the server's TLS certificate is not trusted", check: s.ca, reason };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { problem: "the server's TLS certificate does not name the host", check: s.name, reason };
  if (EXPIRY_CODES.has(code))
    return { problem: "the server's TLS certificate has expired or is not valid yet", check: ["the server's certificate", "this host's clock"], reason };
  // OpenSSL's reason for a plain-text answer to a ClientHello; Node reports it as EPROTO on a write.
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || (code === 'EPROTO' && /wrong version number/.test(reason))) {
    return { problem: 'the server does not speak TLS on this port', check: s.endpoint, reason };
  }
  // An alert from the peer (most often about our client certificate), or another handshake failure.
  if (/^ERR_SSL_.*ALERT_/.test(code) || code === 'EPROTO') {
    return { problem: 'the server refused the TLS handshake', check: [...s.clientCertificate, ...s.endpoint, "the server's TLS settings"], reason };
  }
  return undefined;
}

/** kafkajs' "Connection error: " prefix dropped; an OpenSSL error string reduced to its reason and alert number. */
function tlsMessage(message: string): string {
  const text = message.replace(/^Connection error: /, '');
  const openssl = /SSL routines:[^:]*:([^:]+):.*?(SSL alert number \d+)?\s*$/s.exec(text);
  if (openssl?.[1] !== undefined) return openssl[2] === undefined ? openssl[1] : `${openssl[1]} (${openssl[2]})`;
  return text;
}

/** A refusal of a dependency other than Kafka, built by the checks in preflight.ts. */
export function refused(dependency: Dependency, refusal: Omit<Refusal, 'dependency'>, cause?: unknown): DependencyRefusedError {
  return new DependencyRefusedError({ dependency, ...refusal }, cause === undefined ? {} : { cause });
}
