/**
 * `node bench/e2e/latency-proxy.ts <target port> <latency ms>`: test/support/proxies.ts tcpProxy in
 * front of S3Proxy, with `latencyMs` added to every chunk on its way back to the client (so about
 * that much per S3 request). Prints its URL on stdout, exits when its stdin closes. It runs in a
 * process of its own so that its CPU time is not counted against any variant (it still shares the
 * machine's cores with them).
 */
import { tcpProxy } from '../../test/support/proxies.ts';

const [port, latency] = process.argv.slice(2).map(Number);
if (port === undefined || latency === undefined || !Number.isInteger(port) || !Number.isFinite(latency)) {
  throw new Error('usage: node bench/e2e/latency-proxy.ts <target port> <latency ms>');
}
const proxy = await tcpProxy(port);
proxy.latencyMs = latency;
process.stdout.write(`${proxy.url}\n`);
process.stdin.resume();
process.stdin.on('close', () => {
  void proxy.close().then(() => process.exit(0));
});
