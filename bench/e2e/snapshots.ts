/**
 * The benchmark's snapshots, built one at a time, so a child holding only the bodies never holds
 * every snapshot object at once. Snapshot i equals `snapshots(n, baseTime(), links)[i]` from
 * test/support/stack.ts (same last_modified, link and segment ids); the orchestrator checks that
 * once at start (`checkSameAsTestSupport`).
 */
import type { Snapshot } from '../../src/snapshot.ts';

/** test/support/stack.ts baseTime(): keys are `<prefix><BASE + i>.json`, all 10 digits. */
export const BASE = 1_684_216_515;

export function snapshotAt(i: number, links: number, base = BASE): Snapshot {
  const tow_and_go = new Array<Snapshot['tow_and_go'][number]>(links);
  for (let j = 0; j < links; j++) tow_and_go[j] = { link_id: 17_800_000 + i * 10 + j, segment_id: j % 2 === 0 ? 457_000_000 + j : null };
  return { last_modified: base + i, tow_and_go };
}

export function keyAt(prefix: string, i: number, base = BASE): string {
  return `${prefix}${base + i}.json`;
}
