/**
 * Fault injectors that sit between the service and a real dependency, on 127.0.0.1 only:
 * - a TCP proxy that can black-hole (accept connections, never answer; existing connections go
 *   silent too), refuse (no listener at all, as when the server is stopped) or add latency, in
 *   front of S3Proxy;
 * - an HTTP proxy in front of the registry that answers 503 for chosen schema ids.
 * Each faults only what its own consumer sees, so other tests on the shared stack are untouched.
 */
import { createServer as createHttpServer, request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

/**
 * - `pass`: forward both ways;
 * - `blackhole`: accept, never answer; open connections go silent;
 * - `refuse`: close the listener and reset every open connection, so a connect gets ECONNREFUSED,
 *   as from a stopped server, on the same port: leaving `refuse` listens on that port again.
 */
export type TcpProxyMode = 'pass' | 'blackhole' | 'refuse';

export interface TcpProxy {
  readonly url: string;
  /**
   * Setting it takes effect at once for open connections; entering or leaving `refuse` also
   * closes or reopens the listener, which `setMode` lets a test wait for.
   */
  mode: TcpProxyMode;
  /** Sets the mode and resolves once the listener matches it (rejects if the port cannot be reopened). */
  setMode(mode: TcpProxyMode): Promise<void>;
  /** Added before each chunk is forwarded towards the client (ms). */
  latencyMs: number;
  close(): Promise<void>;
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const state: { mode: TcpProxyMode; latencyMs: number } = { mode: 'pass', latencyMs: 0 };
  const onConnection = (client: Socket): void => {
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
  };
  // A closed net.Server is not reused: leaving `refuse` listens with a fresh one.
  let server: Server | undefined = createServer(onConnection);
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;
  // Listener changes run one after another, in the order the modes were set.
  let listener: Promise<void> = Promise.resolve();
  let failed: unknown;

  const stopListening = (): Promise<void> => {
    const closing = server;
    server = undefined;
    for (const s of sockets) s.destroy();
    return closing === undefined ? Promise.resolve() : new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  const applyListener = async (): Promise<void> => {
    if (state.mode === 'refuse') return stopListening();
    if (server !== undefined) return;
    const reopened = createServer(onConnection);
    await listen(reopened, port);
    server = reopened;
  };
  const setMode = (mode: TcpProxyMode): Promise<void> => {
    state.mode = mode;
    listener = listener.then(applyListener).catch((error: unknown) => {
      failed = error;
    });
    return listener.then(() => {
      if (failed !== undefined) throw new Error(`tcpProxy could not listen on 127.0.0.1:${port} again`, { cause: failed });
    });
  };

  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      // A failure to reopen is reported by the next setMode or by close.
      void setMode(m).catch(() => undefined);
    },
    setMode,
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(ms) {
      state.latencyMs = ms;
    },
    close: async () => {
      await listener;
      await stopListening();
      if (failed !== undefined) throw new Error(`tcpProxy could not listen on 127.0.0.1:${port} again`, { cause: failed });
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
