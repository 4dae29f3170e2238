/**
 * A real OAuth 2 token endpoint on 127.0.0.1 for the OAUTHBEARER tests: client-credentials grant,
 * client id and secret in HTTP Basic, answers an unsecured JWT (alg "none", the kind Kafka's
 * unsecured-JWT validator accepts) with `sub` = the client id. Each request is recorded; a test can
 * make the next answers fail, hang or come late.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenRequest {
  readonly headers: IncomingHttpHeaders;
  readonly form: URLSearchParams;
}

export type TokenAnswer = { readonly status: number; readonly body?: unknown } | 'hang';

export interface TokenEndpoint {
  readonly url: string;
  readonly requests: TokenRequest[];
  /** Seconds each issued token lives (expires_in and the JWT's exp). */
  lifetimeSeconds: number;
  /** Leave out expires_in, so only the JWT's exp tells the lifetime. */
  omitExpiresIn: boolean;
  /** Delay before each answer, to let concurrent callers pile up. */
  delayMs: number;
  /** When set, every answer is this instead of a token. */
  override: TokenAnswer | undefined;
  /** The JWTs issued so far. */
  readonly issued: string[];
  close(): Promise<void>;
}

export function unsecuredJwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.`;
}

export async function startTokenEndpoint(clientId: string, clientSecret: string): Promise<TokenEndpoint> {
  const endpoint: Omit<TokenEndpoint, 'url' | 'close'> = {
    requests: [],
    lifetimeSeconds: 900,
    omitExpiresIn: false,
    delayMs: 0,
    override: undefined,
    issued: [],
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      endpoint.requests.push({ headers: req.headers, form });
      const answer = endpoint.override ?? grant(req.headers.authorization, form);
      if (answer === 'hang') return;
      setTimeout(() => {
        res.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
      }, endpoint.delayMs);
    });
  });

  function grant(authorization: string | undefined, form: URLSearchParams): TokenAnswer {
    if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type' } };
    if (!authenticates(authorization)) return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
    const iat = Math.floor(Date.now() / 1000);
    const scope = form.get('scope') ?? undefined;
    const token = unsecuredJwt({
      sub: clientId,
      iat,
      exp: iat + endpoint.lifetimeSeconds,
      jti: `t${endpoint.issued.length + 1}`,
      ...(scope === undefined ? {} : { scope }),
    });
    endpoint.issued.push(token);
    return {
      status: 200,
      body: { access_token: token, token_type: 'Bearer', ...(endpoint.omitExpiresIn ? {} : { expires_in: endpoint.lifetimeSeconds }) },
    };
  }

  /** RFC 6749 section 2.3.1: Basic base64(form-encoded id ":" form-encoded secret). */
  function authenticates(authorization: string | undefined): boolean {
    if (authorization?.startsWith('Basic ') !== true) return false;
    const pair = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    const formDecoded = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return colon > 0 && formDecoded(pair.slice(0, colon)) === clientId && formDecoded(pair.slice(colon + 1)) === clientSecret;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(endpoint, {
    url: `http://127.0.0.1:${port}/oauth2/token`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
