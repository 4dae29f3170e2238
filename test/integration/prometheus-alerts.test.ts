/**
 * The shipped alert rules (ops/prometheus/alerts.yml) in the real Prometheus, scraping the real
 * service every second: S3 goes away (the service's S3 connections are refused), and through
 * Prometheus' HTTP API TowAndGoStalled goes pending, then fires with the job and instance labels,
 * while `up` stays 1; once S3 is back the alert clears and everything lands.
 *
 * The rules are the shipped file with only the `for:` durations cut to 15 s: promtool's unit tests
 * (test/unit/alerts.test.ts) prove the real durations; here the point is the expressions, labels
 * and job against a live scrape, which those tests cannot show.
 *
 * "S3 down" is a TCP proxy in refuse mode, not `stack stop s3proxy`: the stack is shared with other
 * tests, and a closed port is what the service sees from a stopped S3Proxy.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import { landsExactly } from '../support/landing.ts';
import { type PrometheusAlert, type RunningPrometheus, SHIPPED_RULES, shippedRulesWithFor, startPrometheus } from '../support/prometheus.ts';
import { sampler, type TcpProxy, tcpProxy } from '../support/proxies.ts';
import { allCommitted, createTopics, listKeys, publish, readTopic, silent, snapshots, testEnv, waitFor } from '../support/stack.ts';

const JOB = 'tow-and-go-sink';
const STALLED = 'TowAndGoStalled';
const FOR_SECONDS = 15;
const S3_PORT = 9000;
const SHIPPED_ALERTS = [...readFileSync(SHIPPED_RULES, 'utf8').matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]);

describe('the shipped alert rules in a real Prometheus scraping the service', () => {
  let service: RunningService | undefined;
  let proxy: TcpProxy | undefined;
  let prometheus: RunningPrometheus | undefined;
  let seen: ReturnType<typeof sampler<PrometheusAlert[]>> | undefined;

  // Runs whether the test passed or not: no Prometheus outlives the file.
  afterAll(async () => {
    await seen?.stop();
    await prometheus?.stop();
    await service?.stop('test done');
    await proxy?.close();
  });

  it('TowAndGoStalled goes pending, fires while S3 refuses connections, and clears once S3 is back', { timeout: 150_000 }, async () => {
    proxy = await tcpProxy(S3_PORT);
    const t = testEnv('prom-alerts', { S3_ENDPOINT: proxy.url, S3_ACCESS_KEY_ID: 'local-access-key', S3_SECRET_ACCESS_KEY: 'local-secret-key' });
    await createTopics(t, 3);
    service = await startConsumerService(t.config, silent);
    const instance = `127.0.0.1:${service.http.port}`;
    // Not baseTime() (2023): TowAndGoFeedStale compares last_modified with time(), and must stay
    // quiet here, so the feed is 10 minutes old. Keys are per prefix, so they cannot collide.
    const all = snapshots(60, Math.floor(Date.now() / 1000) - 600);
    await publish(t, all.slice(0, 20));
    await landsExactly(t, all.slice(0, 20));

    // Started once something has landed, so the freshness gauge is never 0 in a scrape.
    const prom = await startPrometheus({ job: JOB, targets: [instance], rules: shippedRulesWithFor(`${FOR_SECONDS}s`) });
    prometheus = prom;
    seen = sampler(() => prom.alerts().catch((): PrometheusAlert[] => []), 500);
    const query = async (expr: string): Promise<number | undefined> => {
      const [sample, ...rest] = await prom.query(expr);
      expect(rest, expr).toEqual([]);
      if (sample === undefined) return undefined;
      expect(sample.metric).toMatchObject({ job: JOB, instance });
      return Number(sample.value[1]);
    };
    const stalledAlert = async (state?: PrometheusAlert['state']): Promise<PrometheusAlert | undefined> => {
      const alert = (await prom.alerts()).find((a) => a.labels.alertname === STALLED);
      return state === undefined || alert?.state === state ? alert : undefined;
    };

    // The shipped file, every rule of it, loaded and evaluated without error.
    await waitFor('every rule evaluated', async () => (await prom.rules()).flatMap((g) => g.rules).every((r) => r.health === 'ok'), 30_000);
    expect((await prom.rules()).flatMap((g) => g.rules.map((r) => r.name))).toEqual(SHIPPED_ALERTS);
    await waitFor('a successful scrape', async () => (await query(`up{job="${JOB}"}`)) === 1, 30_000);
    // TowAndGoNoInstance may be pending from the evaluation before the first scrape; it clears.
    await waitFor('no active alert while all is well', async () => (await prom.alerts()).length === 0, 30_000);
    expect(await query(`tow_and_go_stalled_records{job="${JOB}"}`)).toBe(0);

    await proxy.setMode('refuse');
    const downAt = Date.now();
    await publish(t, all.slice(20, 40));
    const pending = await waitFor('TowAndGoStalled pending', () => stalledAlert('pending'), 30_000, 250);
    expect(pending.labels).toEqual({ alertname: STALLED, job: JOB, instance, severity: 'critical' });
    expect(await query(`up{job="${JOB}"}`)).toBe(1);
    expect(await query(`tow_and_go_stalled_records{job="${JOB}"}`)).toBeGreaterThan(0);
    // Keep publishing through the outage: the records queue up behind the stall.
    await publish(t, all.slice(40));

    const firing = await waitFor('TowAndGoStalled firing', () => stalledAlert('firing'), 60_000, 250);
    const firingAt = Date.now();
    expect(firing.labels).toEqual({ alertname: STALLED, job: JOB, instance, severity: 'critical' });
    expect(firing.annotations.runbook).toBe('README.md#alerts (TowAndGoStalled)');
    // It fired only after being pending for the (shortened) `for:`.
    expect(firingAt - Date.parse(firing.activeAt)).toBeGreaterThanOrEqual(FOR_SECONDS * 1000);
    expect(await query(`up{job="${JOB}"}`)).toBe(1);
    expect(await query(`tow_and_go_stalled_records{job="${JOB}"}`)).toBeGreaterThan(0);
    expect(service.health.ready).toBe(false);
    expect(service.metrics.retries.get({ code: 'S3_UNAVAILABLE' })).toBeGreaterThan(0);
    // Nothing got through the closed port.
    expect(await listKeys(t.prefix)).toEqual(all.slice(0, 20).map((s) => `${t.prefix}${s.last_modified}.json`));

    await proxy.setMode('pass');
    const upAt = Date.now();
    await waitFor('TowAndGoStalled to clear', async () => (await stalledAlert()) === undefined, 30_000, 250);
    const clearedAt = Date.now();
    expect(await query(`tow_and_go_stalled_records{job="${JOB}"}`)).toBe(0);
    await landsExactly(t, all, 120_000);
    await waitFor('committed offsets at the end', () => allCommitted(t));
    expect(await readTopic(t.dlqTopic)).toEqual([]);
    expect(await prom.alerts()).toEqual([]);

    // No alert but TowAndGoStalled ever fired; pending ones are listed to explain a failure.
    const samples = await seen.stop();
    seen = undefined;
    const others = samples.flatMap((s) => s.value).filter((a) => a.labels.alertname !== STALLED);
    expect(
      others.filter((a) => a.state === 'firing'),
      JSON.stringify(others),
    ).toEqual([]);
    console.log(
      JSON.stringify({
        prometheusAlerts: {
          pendingAfterMs: Date.parse(pending.activeAt) - downAt,
          firingAfterMs: firingAt - downAt,
          clearedAfterMs: clearedAt - upAt,
          otherAlertsSeen: [...new Set(others.map((a) => `${a.labels.alertname}:${a.state}`))],
        },
      }),
    );
  });
});
