/** What "landed" means in these tests: exactly the expected objects, each body byte for byte. */
import { expect } from 'vitest';
import { objectBody, type Snapshot } from '../../src/snapshot.ts';
import { getObjectBytes, listKeys, type TestEnv, waitFor } from './stack.ts';

/**
 * Waits until the prefix holds exactly these snapshots' objects (never "at least n"), then checks
 * every body against objectBody. On a timeout the key lists are compared, so the failure shows what
 * is missing or extra.
 */
export async function landsExactly(t: TestEnv, landed: readonly Snapshot[], timeoutMs = 60_000): Promise<void> {
  const want = landed.map((s) => `${t.prefix}${s.last_modified}.json`).sort();
  await waitFor('exactly the expected objects', async () => (await listKeys(t.prefix)).join('\n') === want.join('\n'), timeoutMs).catch(() => undefined);
  expect(await listKeys(t.prefix)).toEqual(want);
  for (const s of landed) {
    const { bytes } = await getObjectBytes(`${t.prefix}${s.last_modified}.json`);
    expect(bytes.equals(objectBody(s)), `body of ${s.last_modified}`).toBe(true);
  }
}
