/**
 * The service's own CLI over the stack's secured listeners (secure-stack.ts): the settings for
 * each way in, the real `tow-and-go` process (consume, publish) with stdout and stderr kept apart
 * and timed, a registry front (https + basic auth) in front of the real registry, and the check
 * that no secret appears in what the processes printed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { expect } from 'vitest';
import { REGISTRY } from './interop.ts';
import { ROOT } from './paths.ts';
import { CA_PEM, CLIENT_CERT_PEM, CLIENT_KEY_PEM, MTLS_BOOTSTRAP, OAUTH_SUBJECT, SASL_SSL_BOOTSTRAP, USER } from './secure-stack.ts';
import type { TestEnv } from './stack.ts';
import { makeTlsFixtures, type TlsFixtures } from './tls-fixtures.ts';
import { startTokenEndpoint, type TokenEndpoint } from './token-endpoint.ts';

/** The S3 keys of the local stack, set explicitly so the secret key is a configured secret like any other. */
export const S3_KEYS = { S3_ACCESS_KEY_ID: 'local-access-key', S3_SECRET_ACCESS_KEY: 'local-secret-key' } as const;

/** SASL_SSL on 9094 with the stack's CA, as user tow-and-go (or another). */
export function saslEnv(mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain', user: { username: string; password: string } = USER): Record<string, string> {
  return {
    KAFKA_BROKERS: SASL_SSL_BOOTSTRAP,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: CA_PEM,
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_SASL_USERNAME: user.username,
    KAFKA_SASL_PASSWORD: user.password,
    ...S3_KEYS,
  };
}

/** mTLS on 9095 with client.pem (principal tow-and-go-mtls). */
export function mtlsEnv(): Record<string, string> {
  return {
    KAFKA_BROKERS: MTLS_BOOTSTRAP,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: CA_PEM,
    KAFKA_SSL_CERT_FILE: CLIENT_CERT_PEM,
    KAFKA_SSL_KEY_FILE: CLIENT_KEY_PEM,
    ...S3_KEYS,
  };
}

/** OAUTHBEARER on 9094, tokens from a client-credentials endpoint (its `sub` is the client id). */
export function oauthEnv(tokenUrl: string, clientId: string, clientSecret: string): Record<string, string> {
  return {
    KAFKA_BROKERS: SASL_SSL_BOOTSTRAP,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: CA_PEM,
    KAFKA_SASL_MECHANISM: 'oauthbearer',
    KAFKA_SASL_OAUTHBEARER_TOKEN_URL: tokenUrl,
    KAFKA_SASL_OAUTHBEARER_CLIENT_ID: clientId,
    KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: clientSecret,
    ...S3_KEYS,
  };
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Exit code and milliseconds from spawn to exit. */
  readonly exited: Promise<{ code: number | null; ms: number }>;
  /** The HTTP port `consume` logs once it consumes. */
  httpPort(timeoutMs?: number): Promise<number>;
}

/** Every process spawned here, so a test file can kill what is left and check all output for secrets. */
export const spawned: CliProcess[] = [];

/** `node src/cli.ts <args>` with the test's settings (and nothing else from this process's environment). */
export function runCli(args: readonly string[], env: Record<string, string>, input?: string): CliProcess {
  const started = Date.now();
  const child = spawn(process.execPath, ['src/cli.ts', ...args], {
    cwd: ROOT,
    // info: `consume` logs its HTTP port at info, and every line it prints is checked for secrets.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, LOG_LEVEL: 'info' },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) child.stdin?.end(input);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; ms: number }>((resolve) => child.once('exit', (code) => resolve({ code, ms: Date.now() - started })));
  const cli: CliProcess = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    httpPort: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = /"httpPort":(\d+)/.exec(out);
        if (m?.[1] !== undefined) return Number(m[1]);
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no HTTP port logged (exit ${String(child.exitCode)}):\n${out}\n${err}`);
    },
  };
  spawned.push(cli);
  return cli;
}

/** `consume` for a test topic, with the secured settings on top of the test's own. */
export function consume(t: TestEnv, env: Record<string, string>): CliProcess {
  return runCli(['consume'], { ...t.env, ...env });
}

/** `publish -` with JSON Lines on stdin; resolves with its run once it exited. */
export async function publishCli(t: TestEnv, env: Record<string, string>, snapshots: readonly unknown[]): Promise<CliProcess> {
  const run = runCli(['publish', '-'], { ...t.env, ...env }, `${snapshots.map((s) => JSON.stringify(s)).join('\n')}\n`);
  const { code } = await run.exited;
  expect(code, `publish: ${run.stdout()}\n${run.stderr()}`).toBe(0);
  expect(run.stdout()).toContain(`published ${snapshots.length} snapshot(s) to ${t.topic}`);
  return run;
}

/** Kills whatever a test left running. */
export function killSpawned(): void {
  for (const p of spawned) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** Starts forwarding `port` (one that was closed) to `targetPort`: a dependency that comes up. */
export async function forward(port: number, targetPort: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export interface RegistryFront {
  /** The Confluent API base through the front, as SCHEMA_REGISTRY_URL. */
  readonly url: string;
  /** Requests it let through, and requests it refused for their credentials. */
  readonly passed: () => number;
  readonly refused: () => number;
  close(): Promise<void>;
}

/**
 * An https reverse proxy with basic auth in front of the real registry (Apicurio, plain http): the
 * credentials are checked here and not forwarded. `cert`/`key` name 127.0.0.1 (tls-fixtures.ts).
 */
export async function startRegistryFront(tls: { cert: Buffer; key: Buffer }, username: string, password: string): Promise<RegistryFront> {
  const target = new URL(REGISTRY);
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  let passed = 0;
  let refused = 0;
  const server: Server = createHttpsServer(tls, (req, res) => {
    if (req.headers.authorization !== expected) {
      refused++;
      req.resume();
      res.writeHead(401, { 'content-type': 'application/vnd.schemaregistry.v1+json', 'www-authenticate': 'Basic realm="registry"' });
      res.end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }));
      return;
    }
    passed++;
    const headers = { ...req.headers };
    delete headers.authorization;
    delete headers.host;
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}${target.pathname}`,
    passed: () => passed,
    refused: () => refused,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SecureFixtures {
  readonly tokens: TokenEndpoint;
  readonly fixtures: TlsFixtures;
  readonly front: RegistryFront;
  /** Kills the CLI processes still running and closes the rest. */
  close(): Promise<void>;
}

/** What both secure test files start: the OAuth token endpoint, throw-away TLS files and the registry front. */
export async function startSecureFixtures(oauthSecret: string, registryUser: string, registryPassword: string): Promise<SecureFixtures> {
  const tokens = await startTokenEndpoint(OAUTH_SUBJECT, oauthSecret);
  const fixtures = makeTlsFixtures();
  const front = await startRegistryFront(
    { cert: fixtures.read(fixtures.serverCertFile), key: fixtures.read(fixtures.serverKeyFile) },
    registryUser,
    registryPassword,
  );
  return {
    tokens,
    fixtures,
    front,
    close: async () => {
      killSpawned();
      await tokens.close();
      await front.close();
      fixtures.remove();
    },
  };
}

/** The base64 lines of a PEM private key: none of them may be printed. */
export function pemBodyLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length >= 16 && !l.startsWith('-----'));
}

/** Fails naming the secret (by its index, never its value) and where it appeared. */
export function expectNoSecret(texts: ReadonlyMap<string, string>, secrets: readonly string[]): void {
  const found: string[] = [];
  for (const [where, text] of texts) {
    secrets.forEach((secret, i) => {
      if (secret.length >= 4 && text.includes(secret)) found.push(`secret #${i} in ${where}`);
    });
  }
  expect(found).toEqual([]);
}
