/**
 * Liveness, readiness and metrics over plain HTTP.
 * - /healthz: the process is alive and its consumer has not stopped for good.
 * - /readyz: joined the group, in contact with the brokers, no partition stalled on a retryable failure,
 *   and no dependency still unanswered since its start-up check found it down.
 * - /metrics: Prometheus text, from the Metrics registry (prom-client).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';

export class Health {
  joined = false;
  fatal = false;
  readonly #stalled: () => number;
  readonly #connected: () => boolean;
  readonly #waitingFor: () => readonly string[];

  /**
   * `stalled`: partitions stalled on a retryable failure; `connected`: the brokers answered lately;
   * `waitingFor`: dependencies that were down at start and have not answered since.
   */
  constructor(stalled: () => number, connected: () => boolean = () => true, waitingFor: () => readonly string[] = () => []) {
    this.#stalled = stalled;
    this.#connected = connected;
    this.#waitingFor = waitingFor;
  }

  get live(): boolean {
    return !this.fatal;
  }

  get ready(): boolean {
    return this.live && this.joined && this.#connected() && this.#stalled() === 0 && this.#waitingFor().length === 0;
  }

  describe(): { live: boolean; ready: boolean; joined: boolean; connected: boolean; stalledPartitions: number; waitingFor: string[] } {
    return {
      live: this.live,
      ready: this.ready,
      joined: this.joined,
      connected: this.#connected(),
      stalledPartitions: this.#stalled(),
      waitingFor: [...this.#waitingFor()],
    };
  }
}

export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHttpServer(host: string, port: number, health: Health, metrics: Metrics): Promise<HttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' ? health.live : health.ready;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(health.describe()));
    } else if (path === '/metrics') {
      metrics.render().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        // A collect hook that throws is a bug; the scrape fails instead of the process.
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
