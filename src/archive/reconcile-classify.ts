/**
 * `tow-and-go reconcile`, the pure part: what one record of the range is, given what was found
 * about it, and the tally of a whole range. No I/O; reconcile.ts gathers the facts.
 *
 * Every record is exactly one of these, decided in this order (the first that applies wins):
 * 1. outside, `time_range`: its Kafka timestamp is outside an ISO `--from`/`--to` bound. Offsets
 *    bound the range, but CreateTime need not be monotonic, so the records inside the offset bounds
 *    are filtered by timestamp exactly as `replay` does (it skips the same records).
 * 2. written: every destination's object at its key has its content-sha256, and the first
 *    destination's (the one the pipeline builds the object for) names this record (topic,
 *    partition, offset) as its source.
 * 3. duplicate: every destination's object has its content-sha256, but the first destination's was
 *    written from another record: an identical re-publish (or a replay from another topic).
 * 4. dead_lettered: a DLQ record's headers name this topic, partition and offset.
 * 5. unaccounted, `undecodable`: it cannot be made into a snapshot at all (null value, bad wire
 *    format, unknown or incompatible schema, bad Avro, a link that is not valid).
 * 6. outside, `before_min_last_modified`: a snapshot whose only fault under the current settings is a
 *    last_modified before MIN_LAST_MODIFIED. That setting is the range of history the deployment
 *    keeps, so such a record is not expected in S3. (The live consumer dead-letters these: one that
 *    is in the DLQ was already counted at 4, and one whose object exists at 2 or 3.)
 * 7. unaccounted, `undecodable`: a snapshot the current settings refuse for another reason (too many
 *    links, too far in the future). The consumer would dead-letter it; it is not in the DLQ.
 * 8. unaccounted, `conflict`: a destination holds an object at its key with another content-sha256
 *    (or none recorded).
 * 9. unaccounted, `missing`: some destination has no object at its key (and none conflicts).
 * A matching object comes before the DLQ on purpose: what matters is that the snapshot is in S3.
 * With several destinations (S3_DESTINATIONS) a record is accounted for by S3 only when every
 * destination has it, as the pipeline commits a record only then.
 */

/** Where an object says it came from (its source-* metadata). */
export interface Lineage {
  readonly topic: string | undefined;
  readonly partition: string | undefined;
  readonly offset: string | undefined;
}

/** What HeadObject says about a key: undefined when there is no object. */
export interface StoredObject {
  /** content-sha256; undefined when the object has none (not written by this service). */
  readonly sha256: string | undefined;
  readonly lineage: Lineage;
}

/** What the current settings say of a snapshot the record decodes to. */
export type Acceptance =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'before_min' }
  | { readonly kind: 'refused'; readonly code: string; readonly reason: string };

/** One destination's object for the record's key. */
export interface Copy {
  readonly destination: string;
  readonly key: string;
  readonly stored: StoredObject | undefined;
}

/** The record as a snapshot: its hash and every destination's copy (the first is the pipeline's), or why it is none. */
export type Body =
  | { readonly kind: 'built'; readonly sha256: string; readonly acceptance: Acceptance; readonly copies: readonly Copy[] }
  | { readonly kind: 'undecodable'; readonly code: string; readonly reason: string };

/** A DLQ record's error headers, as far as reconcile needs them. */
export interface DeadLetterEntry {
  readonly code: string;
  readonly errorClass: string;
  readonly reason: string;
}

export interface RecordFacts {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly inTimeRange: boolean;
  readonly deadLetter: DeadLetterEntry | undefined;
  /** Undefined only for records outside the time range, which are not decoded. */
  readonly body: Body | undefined;
}

export type Verdict =
  | { readonly kind: 'written' }
  | { readonly kind: 'duplicate'; readonly of: Lineage }
  | { readonly kind: 'dead_lettered'; readonly entry: DeadLetterEntry }
  | { readonly kind: 'outside'; readonly why: 'time_range' | 'before_min_last_modified' }
  | { readonly kind: 'missing'; readonly key: string; readonly destinations: readonly string[] }
  | { readonly kind: 'conflict'; readonly key: string; readonly destination: string; readonly stored: StoredObject; readonly ours: string }
  | { readonly kind: 'undecodable'; readonly key: string | undefined; readonly code: string; readonly reason: string };

export type UnaccountedKind = 'missing' | 'conflict' | 'undecodable';

export function isUnaccounted(v: Verdict): v is Extract<Verdict, { kind: UnaccountedKind }> {
  return v.kind === 'missing' || v.kind === 'conflict' || v.kind === 'undecodable';
}

/** The rules in the module comment, in their order. */
export function classify(f: RecordFacts): Verdict {
  if (!f.inTimeRange) return { kind: 'outside', why: 'time_range' };
  const body = f.body;
  if (body === undefined) throw new Error(`reconcile: ${f.topic}/${f.partition}@${f.offset} is in range but was not examined`);
  const primary = body.kind === 'built' ? body.copies[0] : undefined;
  if (body.kind === 'built' && primary?.stored !== undefined && body.copies.every((c) => c.stored?.sha256 === body.sha256)) {
    const from = primary.stored.lineage;
    const same = from.topic === f.topic && from.partition === String(f.partition) && from.offset === f.offset;
    return same ? { kind: 'written' } : { kind: 'duplicate', of: from };
  }
  if (f.deadLetter !== undefined) return { kind: 'dead_lettered', entry: f.deadLetter };
  if (body.kind === 'undecodable') return { kind: 'undecodable', key: undefined, code: body.code, reason: body.reason };
  const acceptance = body.acceptance;
  if (acceptance.kind === 'before_min') return { kind: 'outside', why: 'before_min_last_modified' };
  if (acceptance.kind === 'refused') return { kind: 'undecodable', key: primary?.key, code: acceptance.code, reason: acceptance.reason };
  for (const c of body.copies) {
    if (c.stored !== undefined && c.stored.sha256 !== body.sha256)
      return { kind: 'conflict', key: c.key, destination: c.destination, stored: c.stored, ours: body.sha256 };
  }
  const lacking = body.copies.filter((c) => c.stored === undefined);
  return { kind: 'missing', key: lacking[0]?.key ?? primary?.key ?? '', destinations: lacking.map((c) => c.destination) };
}

/** Why an unaccounted record is unaccounted, in one phrase for its stderr line. */
export function why(v: Extract<Verdict, { kind: UnaccountedKind }>): string {
  switch (v.kind) {
    case 'missing':
      return `no object at its key in destination ${v.destinations.join(', ')}`;
    case 'conflict': {
      const from = v.stored.lineage;
      const source = from.offset === undefined ? 'no recorded source' : `written from ${from.topic}/${from.partition}@${from.offset}`;
      return `the object in destination ${v.destination} holds another snapshot (content-sha256 ${v.stored.sha256 ?? 'not recorded'}, ${source}; this record's is ${v.ours})`;
    }
    case 'undecodable':
      return `${v.code}: ${v.reason}; and it is not in the DLQ`;
  }
}

/** One stderr line per unaccounted record: JSON, so it can be read by people and by scripts. */
export function unaccountedLine(f: Pick<RecordFacts, 'topic' | 'partition' | 'offset'>, v: Extract<Verdict, { kind: UnaccountedKind }>): string {
  const code = v.kind === 'undecodable' ? { code: v.code } : {};
  return JSON.stringify({
    unaccounted: { topic: f.topic, partition: f.partition, offset: f.offset, key: v.key ?? null, why: v.kind, ...code, detail: why(v) },
  });
}

export interface TallyCounts {
  records: number;
  written: number;
  duplicate: number;
  dead_lettered: number;
  outside: number;
  unaccounted: { missing: number; conflict: number; undecodable: number };
  repaired: number;
}

/** Counts verdicts; a re-check replaces a record's earlier verdict (`replace`). */
export class Tally {
  readonly counts: TallyCounts = {
    records: 0,
    written: 0,
    duplicate: 0,
    dead_lettered: 0,
    outside: 0,
    unaccounted: { missing: 0, conflict: 0, undecodable: 0 },
    repaired: 0,
  };

  add(v: Verdict): void {
    this.counts.records++;
    this.#bump(v, 1);
  }

  /** A repaired record's verdict after the repair: its earlier one is taken back. */
  replace(before: Verdict, after: Verdict): void {
    this.#bump(before, -1);
    this.#bump(after, 1);
    if (isUnaccounted(before) && !isUnaccounted(after)) this.counts.repaired++;
  }

  get unaccounted(): number {
    const u = this.counts.unaccounted;
    return u.missing + u.conflict + u.undecodable;
  }

  #bump(v: Verdict, by: number): void {
    if (isUnaccounted(v)) this.counts.unaccounted[v.kind] += by;
    else this.counts[v.kind] += by;
  }
}

/** Pure: the error headers of a DLQ record, or undefined when it does not name a record of `topic`. */
export function deadLetterSource(
  headers: Readonly<Record<string, string | undefined>>,
  names: { topic: string; partition: string; offset: string; code: string; errorClass: string; message: string },
  topic: string,
): { partition: number; offset: string; entry: DeadLetterEntry } | undefined {
  const partition = headers[names.partition];
  const offset = headers[names.offset];
  if (headers[names.topic] !== topic || partition === undefined || offset === undefined) return undefined;
  if (!/^\d+$/.test(partition) || !/^\d+$/.test(offset)) return undefined;
  return {
    partition: Number(partition),
    offset,
    entry: { code: headers[names.code] ?? 'UNKNOWN', errorClass: headers[names.errorClass] ?? 'UNKNOWN', reason: headers[names.message] ?? '' },
  };
}

/** Pure: whether a record timestamp (ms, as kafkajs gives it) is inside [fromMs, toMs). */
export function inTimeRange(timestamp: string, fromMs: number, toMs: number): boolean {
  const ms = Number(timestamp);
  return ms >= fromMs && ms < toMs;
}
