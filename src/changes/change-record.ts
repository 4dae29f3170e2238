/**
 * The change record (avro/tow-and-go-change.avsc) and how one is built from a delta. Pure apart
 * from reading the schema file.
 */
import { readFileSync } from 'node:fs';
import avro, { type Type } from 'avsc';
import type { Delta, GainedLink, SegmentChange } from './delta.ts';

export const CHANGE_SCHEMA_PATH = new URL('../../avro/tow-and-go-change.avsc', import.meta.url);

/** The topic the issue names; its value schema is registered under `tow-and-go.changes-value`. */
export const DEFAULT_CHANGES_TOPIC = 'tow-and-go.changes';

/**
 * Every change record has this key. Kafka orders records only within a partition, and the default
 * partitioner maps one key to one partition, so one constant key puts the whole stream in one
 * partition in produce order, however many partitions the topic has and however many sink
 * instances produce. A per-snapshot key (last_modified) would scatter consecutive changes over
 * partitions and a consumer could not tell a gap from a reordering. The topic must not be
 * compacted: compaction would keep only the newest record of the one key.
 */
export const CHANGE_RECORD_KEY = 'tow-and-go';

export type ChangeBase = 'NONE' | 'NEAREST_EARLIER';

/** The record as Avro writes it: field names are the schema's. */
export interface ChangeRecord {
  readonly last_modified: number;
  readonly key: string;
  readonly content_sha256: string;
  readonly base: ChangeBase;
  readonly base_last_modified: number | null;
  readonly base_key: string | null;
  readonly link_count: number;
  readonly base_link_count: number;
  readonly duplicate_links: number;
  readonly delta_omitted: boolean;
  readonly gained_count: number;
  readonly lost_count: number;
  readonly segment_changed_count: number;
  readonly gained: readonly GainedLink[];
  readonly lost: readonly number[];
  readonly segment_changed: readonly SegmentChange[];
}

export function loadChangeSchema(): { raw: string; type: Type } {
  const raw = readFileSync(CHANGE_SCHEMA_PATH, 'utf8');
  return { raw, type: avro.Type.forSchema(JSON.parse(raw) as avro.Schema) };
}

export interface ChangeSource {
  readonly key: string;
  readonly lastModified: number;
  readonly sha256: string;
}

export interface ChangeBaseRef {
  readonly lastModified: number;
  readonly key: string;
}

/** Pure: the record for `delta` of `current` against `base` (undefined: no earlier snapshot). */
export function changeRecord(current: ChangeSource, base: ChangeBaseRef | undefined, delta: Delta): ChangeRecord {
  return {
    last_modified: current.lastModified,
    key: current.key,
    content_sha256: current.sha256,
    base: base === undefined ? 'NONE' : 'NEAREST_EARLIER',
    base_last_modified: base?.lastModified ?? null,
    base_key: base?.key ?? null,
    link_count: delta.current_links,
    base_link_count: delta.previous_links,
    duplicate_links: delta.current_duplicates,
    delta_omitted: false,
    gained_count: delta.gained.length,
    lost_count: delta.lost.length,
    segment_changed_count: delta.segment_changed.length,
    gained: delta.gained,
    lost: delta.lost,
    segment_changed: delta.segment_changed,
  };
}

/** The same record without the lists, for when the full one is too large for the topic; the counts stay. */
export function omittedRecord(record: ChangeRecord): ChangeRecord {
  return { ...record, delta_omitted: true, gained: [], lost: [], segment_changed: [] };
}
