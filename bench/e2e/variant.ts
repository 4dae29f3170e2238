/**
 * One variant in a process of its own, so its CPU time and peak RSS are its own:
 *
 *   node bench/e2e/variant.ts <service|naive|consume-only|raw-put> '<VariantParams as JSON>'
 *
 * Started by the orchestrator (bench/run.ts), which speaks the line protocol of protocol.ts on
 * stdin/stdout. Only the chosen variant's module is imported (dynamically), so a consume-only
 * process never loads the AWS SDK, and setup (imports, connections objects, raw-put's bodies)
 * happens before `ready`, outside the timed window. The window opens when `start` arrives:
 * process.cpuUsage() is read, the start time taken, the variant started. It closes when the
 * variant says it is done (naive, consume-only, raw-put) or when `stop <epoch ms>` arrives
 * (service: the parent saw every offset committed at that time). CPU is read right then, and
 * peak RSS (process.resourceUsage().maxRSS, which covers the whole life of the process). Then
 * it reports, disconnects (untimed) and exits.
 */
import { createInterface } from 'node:readline';
import { filterKnownWarnings } from '../../src/warnings.ts';
import { type ChildMessage, epochMs, isVariant, type Variant, type VariantParams } from './protocol.ts';
import type { PreparedVariant } from './variants/types.ts';

function send(message: ChildMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function load(variant: Variant, params: VariantParams): Promise<PreparedVariant> {
  switch (variant) {
    case 'service':
      return (await import('./variants/service.ts')).prepare(params);
    case 'naive':
      return (await import('./variants/naive.ts')).prepare(params);
    case 'consume-only':
      return (await import('./variants/consume-only.ts')).prepare(params);
    case 'raw-put':
      return (await import('./variants/raw-put.ts')).prepare(params);
  }
}

/** Lines from the parent; the process ends if the parent goes away. */
function parentLines(): { next(prefix: string): Promise<string> } {
  const waiting = new Map<string, (line: string) => void>();
  const early: string[] = [];
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const word = line.split(' ')[0] ?? '';
    const resolve = waiting.get(word);
    if (resolve === undefined) early.push(line);
    else {
      waiting.delete(word);
      resolve(line);
    }
  });
  lines.on('close', () => process.exit(2));
  return {
    next: (prefix) =>
      new Promise((resolve) => {
        const at = early.findIndex((l) => l.split(' ')[0] === prefix);
        if (at >= 0) resolve(early.splice(at, 1)[0] ?? '');
        else waiting.set(prefix, resolve);
      }),
  };
}

async function main(): Promise<void> {
  filterKnownWarnings();
  const [name, json] = process.argv.slice(2);
  if (name === undefined || !isVariant(name) || json === undefined) throw new Error('usage: node bench/e2e/variant.ts <variant> <params json>');
  const params = JSON.parse(json) as VariantParams;
  const prepared = await load(name, params);
  const parent = parentLines();
  send({ type: 'ready' });
  await parent.next('start');

  const cpu0 = process.cpuUsage();
  const startedAt = epochMs();
  const run = prepared.start();
  send({ type: 'started', at: startedAt });
  void run.running?.then(() => send({ type: 'running' })).catch(() => undefined);
  const stopped = parent.next('stop').then((line) => Number(line.split(' ')[1]));
  const endedAt = await Promise.race([run.done, stopped]);
  const cpu = process.cpuUsage(cpu0);
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  if (!Number.isFinite(endedAt)) throw new Error('stop without a time');
  send({
    type: 'result',
    variant: name,
    seconds: (endedAt - startedAt) / 1000,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssMiB,
    objects: run.objects(),
    startedAt,
    endedAt,
  });
  await run.close();
}

try {
  await main();
  process.exit(0);
} catch (error) {
  send({ type: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  process.exit(1);
}
