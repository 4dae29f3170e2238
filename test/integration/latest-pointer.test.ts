/**
 * The latest pointer as the service keeps it: three consumer processes of one group write it
 * concurrently, then a replay of the whole topic (old data) runs beside them while newer snapshots
 * arrive. A poller reads `<prefix>latest.json` all along: it never moves back, and it ends on the
 * newest snapshot, with its hash and link count. S3Proxy's If-Match is not atomic, so the processes
 * run with LATEST_POINTER=lease (README, "The archive").
 */
import { spawn } from 'node:child_process';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { contentHash } from '../../src/content-hash.ts';
import { objectBody, type Snapshot } from '../../src/snapshot.ts';
import { landsExactly } from '../support/landing.ts';
import {
  allCommitted,
  baseTime,
  type ConsumerProcess,
  createTopics,
  NODE,
  publish,
  ROOT,
  s3,
  snapshots,
  spawnConsumer,
  testEnv,
  waitFor,
} from '../support/stack.ts';

interface Pointer {
  readonly key: string;
  readonly last_modified: number;
  readonly content_sha256: string;
  readonly links: number;
}

async function readPointer(key: string): Promise<Pointer | undefined> {
  try {
    const got = await s3().send(new GetObjectCommand({ Bucket: 'tow-and-go', Key: key }));
    return JSON.parse((await got.Body?.transformToString()) ?? '') as Pointer;
  } catch {
    return undefined; // not there yet
  }
}

/** Reads the pointer every 50 ms; `stop()` returns every distinct last_modified seen, in order. */
function pollPointer(key: string): { stop(): Promise<number[]> } {
  const seen: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const p = await readPointer(key);
      if (p !== undefined && p.last_modified !== seen.at(-1)) seen.push(p.last_modified);
      await new Promise((resolve) => setTimeout(resolve, 50));
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

function shuffled<T>(list: readonly T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('the latest pointer under concurrent writers', () => {
  const processes: ConsumerProcess[] = [];
  afterAll(() => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });

  it('three instances and a replay of old data never move it back; it ends on the newest snapshot', async () => {
    const t = testEnv('pointer', { LATEST_POINTER: 'lease' });
    await createTopics(t, 6);
    for (let i = 0; i < 3; i++) processes.push(spawnConsumer(t));
    const pointerKey = `${t.prefix}latest.json`;
    const poll = pollPointer(pointerKey);

    const base = baseTime();
    const first = snapshots(200, base);
    await publish(t, shuffled(first));
    await landsExactly(t, first, 120_000);
    await waitFor('the first 200 committed', () => allCommitted(t), 120_000);
    expect((await readPointer(pointerKey))?.last_modified).toBe(base + 199);

    // A replay of everything (older than the pointer) beside newer snapshots arriving.
    const replay = spawn(NODE, ['src/cli.ts', 'replay', '--from', 'earliest'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let replayOutput = '';
    replay.stdout.on('data', (d: Buffer) => (replayOutput += d.toString('utf8')));
    replay.stderr.on('data', (d: Buffer) => (replayOutput += d.toString('utf8')));
    const replayed = new Promise<number | null>((resolve) => replay.once('exit', resolve));
    const second = snapshots(100, base + 200);
    await publish(t, shuffled(second));
    expect(await replayed, replayOutput).toBe(0);

    const all: Snapshot[] = [...first, ...second];
    await landsExactly(t, all, 120_000);
    await waitFor('everything committed', () => allCommitted(t), 120_000);
    const newest = second.at(-1) as Snapshot;
    await waitFor('the pointer on the newest snapshot', async () => (await readPointer(pointerKey))?.last_modified === newest.last_modified || undefined);
    const seen = await poll.stop();

    expect(seen.length).toBeGreaterThan(1);
    expect(seen, 'the pointer moved back').toEqual([...seen].sort((a, b) => a - b));
    expect(await readPointer(pointerKey)).toEqual({
      key: `${t.prefix}${newest.last_modified}.json`,
      last_modified: newest.last_modified,
      content_sha256: contentHash(objectBody(newest)),
      links: newest.tow_and_go.length,
      source: expect.objectContaining({ topic: t.topic }),
    });
  }, 240_000);
});
