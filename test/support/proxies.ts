/**
 * Fault injectors that sit between the service and a real dependency, on 127.0.0.1 only:
 * - a TCP proxy that can black-hole (accept connections, never answer; existing connections go
 *   silent too) or add latency, in front of S3Proxy;
 * - an HTTP proxy in front of the registry that answers 503 for chosen schema ids.
 * Each faults only what its own consumer sees, so other tests on the shared stack are untouched.
 */
import { createServer as createHttpServer, request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  readonly url: string;
  mode: 'pass' | 'blackhole';
  /** Added before each chunk is forwarded towards the client (ms). */
  latencyMs: number;
  close(): Promise<void>;
}

export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const state: { mode: 'pass' | 'blackhole'; latencyMs: number } = { mode: 'pass', latencyMs: 0 };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    // A black hole accepts the connection and then says nothing, for ever.
    if (state.mode === 'blackhole') return;
    const upstream = connect(targetPort, targetHost);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.on('data', (chunk: Buffer) => {
      if (state.mode === 'pass') upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (state.mode !== 'pass') return;
      if (state.latencyMs === 0) client.write(chunk);
      else setTimeout(() => state.mode === 'pass' && client.write(chunk), state.latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(ms) {
      state.latencyMs = ms;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RegistryProxy {
  /** Base URL, with the same path as the real registry's ccompat API. */
  readonly url: string;
  /** Schema ids answered with 503 until removed. */
  readonly failing: Set<number>;
  /** Requests for a failing id so far. */
  failures: number;
  close(): Promise<void>;
}

export async function registryProxy(realBase: string): Promise<RegistryProxy> {
  const real = new URL(realBase);
  const failing = new Set<number>();
  const proxy: { failures: number } = { failures: 0 };
  const server = createHttpServer((req, res) => {
    const id = /\/schemas\/ids\/(\d+)/.exec(req.url ?? '')?.[1];
    if (id !== undefined && failing.has(Number(id))) {
      proxy.failures++;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error_code":50301,"message":"injected outage"}');
      return;
    }
    const upstream = request(
      { host: real.hostname, port: real.port, method: req.method, path: req.url, headers: { ...req.headers, host: real.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${real.pathname.replace(/\/$/, '')}`,
    failing,
    get failures() {
      return proxy.failures;
    },
    set failures(n) {
      proxy.failures = n;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Samples `probe` every `everyMs` until stopped; returns what it saw. */
export function sampler<T>(probe: () => Promise<T>, everyMs: number): { stop(): Promise<{ at: number; value: T }[]> } {
  const seen: { at: number; value: T }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      seen.push({ at, value: await probe() });
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - at))));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}
