/** The schema registry start-up check (preflight.ts): GET /schemas/types with the configured auth and CA. */
import http from 'node:http';
import https from 'node:https';
import { CHECK_TIMEOUT_MS, type Check, down, networkReason, type Outcome, ok, refusal } from './preflight-outcome.ts';
import { refused, type TlsSettings, tlsRefusal } from './refusals.ts';
import { type RegistrySettings, registryAgent, registryEndpoint } from './registry-client.ts';

const REGISTRY_TLS: TlsSettings = {
  ca: ['SCHEMA_REGISTRY_CA_FILE'],
  name: ['SCHEMA_REGISTRY_URL'],
  clientCertificate: [],
  endpoint: ['SCHEMA_REGISTRY_URL'],
};
/** What a registry answers in every version of the Confluent API and in Apicurio's ccompat API, to any authenticated client. */
export const REGISTRY_PROBE_PATH = '/schemas/types';

/** GET <SCHEMA_REGISTRY_URL>/schemas/types with the configured basic auth and CA. */
export function registryCheck(s: RegistrySettings, timeoutMs = CHECK_TIMEOUT_MS): Check {
  return { dependency: 'schema registry', run: () => checkRegistry(s, Math.min(timeoutMs, s.timeoutMs)) };
}

async function checkRegistry(s: RegistrySettings, timeoutMs: number): Promise<Outcome> {
  const { url, auth } = registryEndpoint(s);
  const agent = registryAgent(url, s.ca);
  const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
  if (auth !== undefined) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  try {
    const answer = await getOnce(new URL(`${url}${REGISTRY_PROBE_PATH}`), agent, headers, timeoutMs);
    return registryOutcome(answer, s.password === undefined ? [] : [s.password]);
  } catch (error) {
    return registryOutcome({ error });
  } finally {
    agent.destroy();
  }
}

/**
 * - 2xx: ok.
 * - 401, 403: refused, the credentials (or the registry's ACLs).
 * - 408, 429, 5xx, no answer: down.
 * - TLS verification failures: refused, the CA file or the URL's host.
 * - any other answer (404, a redirect to a login page, 400): refused, SCHEMA_REGISTRY_URL is not
 *   the base of a Confluent-compatible API. Every lookup would stall on it for ever.
 */
export function registryOutcome(answer: { status: number; body?: string } | { error: unknown }, secrets: readonly string[] = []): Outcome {
  if ('error' in answer) {
    const tls = tlsRefusal(answer.error, REGISTRY_TLS);
    if (tls !== undefined) return refusal(refused('schema registry', { refused: 'the connection', ...tls }, answer.error));
    return down(networkReason(answer.error));
  }
  const { status } = answer;
  if (status >= 200 && status < 300) return ok;
  const reason = `HTTP ${status} on GET ${REGISTRY_PROBE_PATH}${serverMessage(answer.body, secrets)}`;
  if (status === 401 || status === 403) {
    return refusal(
      refused('schema registry', {
        refused: 'the request',
        problem: status === 401 ? 'authentication failed' : 'not authorized',
        check: ['SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_PASSWORD'],
        reason,
      }),
    );
  }
  if (status === 408 || status === 429 || status >= 500) return down(reason);
  return refusal(
    refused('schema registry', { refused: 'the request', problem: 'no Confluent-compatible registry API at this URL', check: ['SCHEMA_REGISTRY_URL'], reason }),
  );
}

/** The `message` of a Confluent-style JSON error body, scrubbed of the password; nothing else of the body. */
function serverMessage(body: string | undefined, secrets: readonly string[]): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body ?? '');
  } catch {
    return '';
  }
  if (typeof parsed !== 'object' || parsed === null || !('message' in parsed) || typeof parsed.message !== 'string') return '';
  let message = parsed.message.slice(0, 200);
  for (const secret of secrets) if (secret.length >= 4) message = message.replaceAll(secret, '<redacted>');
  return `: ${message}`;
}

function getOnce(url: URL, agent: http.Agent, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { agent, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 64 * 1024) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}
