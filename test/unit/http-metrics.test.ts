import { afterEach, describe, expect, it } from 'vitest';
import { Health, type HttpServer, startHttpServer } from '../../src/http.ts';
import { Metrics } from '../../src/metrics.ts';

describe('GET /metrics', () => {
  let server: HttpServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves the registry's text with prom-client's content type, after the onRender hooks", async () => {
    const metrics = new Metrics();
    metrics.onRender(() => metrics.sinceProgress.set({ partition: '0' }, 12));
    metrics.records.add({ outcome: 'created' }, 1);
    server = await startHttpServer('127.0.0.1', 0, new Health(() => 0), metrics);
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.contentType);
    const text = await res.text();
    expect(text).toContain('tow_and_go_records_total{outcome="created"} 1\n');
    expect(text).toContain('tow_and_go_partition_seconds_since_progress{partition="0"} 12\n');
  });

  it('answers 500 when a collect hook throws, and stays up', async () => {
    const metrics = new Metrics();
    metrics.onRender(() => {
      throw new Error('bug');
    });
    server = await startHttpServer('127.0.0.1', 0, new Health(() => 0), metrics);
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status).toBe(500);
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
  });
});
