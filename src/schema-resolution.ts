/**
 * Avro schema resolution with the rules of Java Avro's SchemaCompatibility, which is what schema
 * registries run when they check a subject. avsc alone matches named types by full name, so a
 * producer that registered the same records under its own namespace was refused although its
 * registry had accepted the schema.
 *
 * How: one walk over the reader and writer schemas decides compatibility, names the first field
 * that fails, and notes which writer names each reader named type and field must answer to. A copy
 * of the reader schema that carries those names as aliases then goes to avsc's createResolver,
 * which does the byte-level work (skipping writer-only fields, defaults, union branches,
 * promotions) as before. When no alias is needed the reader schema itself is used.
 *
 * The rules:
 * - Named types (record, enum, fixed) match by unqualified name, or through an alias: a reader alias
 *   naming the writer type (Java), or a writer alias naming the reader type. Java ignores writer
 *   aliases; they are honoured here because a registry at BACKWARD (Confluent's default level)
 *   accepts a writer that renames a record and keeps the old name as an alias.
 * - Reader fields match writer fields by name or reader field alias, else by writer field alias. A
 *   reader field the writer lacks takes its default; without a default the writer is incompatible.
 *   Writer fields the reader lacks are skipped. Two candidate writer fields are ambiguous.
 * - A writer union is readable when each of its branches is. A reader union reads a writer type
 *   when any of its branches does, whatever the order of the branches.
 * - Promotions: int to long, float or double; long to float or double; float to double; string to
 *   bytes and bytes to string.
 * - Enums: every writer symbol is a reader symbol, or the reader enum has a default. Fixed: equal
 *   sizes.
 */
import avro, { type Resolver, type Type } from 'avsc';

/** The writer schema cannot be read as the reader schema; `path` is the first place that fails. */
export class SchemaResolutionError extends Error {
  readonly path: string;

  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = 'SchemaResolutionError';
    this.path = path;
  }
}

export interface Resolution {
  /** The reader schema, or its copy that also answers to the writer's names. */
  readonly reader: Type;
  readonly resolver: Resolver;
}

/** The parts of avsc's Type the walk reads (avsc's typings declare them loosely). */
interface Node {
  readonly typeName: string;
  readonly name?: string | undefined;
  readonly aliases?: readonly string[] | undefined;
  readonly fields?: readonly FieldNode[];
  readonly itemsType?: Node;
  readonly valuesType?: Node;
  readonly types?: readonly Node[];
  readonly symbols?: readonly string[];
  readonly size?: number;
  readonly default?: unknown;
}

interface FieldNode {
  readonly name: string;
  readonly type: Node;
  readonly aliases: readonly string[];
  defaultValue(): unknown;
}

/** Where a pair fails, relative to that pair: field names, `[]` for array items, `{}` for map values. */
interface Failure {
  readonly at: readonly string[];
  readonly reason: string;
}

/** Reader type name → writer type names that a value of the reader type may be written as. */
const PROMOTIONS: Readonly<Record<string, readonly string[]>> = {
  long: ['int'],
  float: ['int', 'long'],
  double: ['int', 'long', 'float'],
  string: ['bytes'],
  bytes: ['string'],
};

/** Marks a pair being checked: as in Java, a recursive revisit counts as compatible. */
const IN_PROGRESS = Symbol('in progress');

export function resolveWriter(reader: Type, writer: Type): Resolution {
  const walk = new Walk();
  const failure = walk.check(reader as unknown as Node, writer as unknown as Node);
  if (failure !== undefined) throw new SchemaResolutionError(formatPath(failure.at), failure.reason);
  const target = walk.needsAliases() ? withAliases(reader, walk) : reader;
  try {
    return { reader: target, resolver: target.createResolver(writer) };
  } catch (error) {
    // The walk and avsc should agree. Where they do not, avsc cannot decode it, so its refusal holds.
    throw new SchemaResolutionError('(root)', `avsc cannot resolve it: ${error instanceof Error ? error.message : String(error)}`);
  }
}

class Walk {
  /** Reader type full name → writer full names it must also answer to. */
  readonly typeAliases = new Map<string, Set<string>>();
  /** Reader record full name → reader field name → writer field names it must also answer to. */
  readonly fieldAliases = new Map<string, Map<string, Set<string>>>();
  readonly #memo = new Map<Node, Map<Node, Failure | undefined | typeof IN_PROGRESS>>();

  needsAliases(): boolean {
    return this.typeAliases.size > 0 || this.fieldAliases.size > 0;
  }

  check(r: Node, w: Node): Failure | undefined {
    let row = this.#memo.get(r);
    if (row === undefined) {
      row = new Map();
      this.#memo.set(r, row);
    }
    if (row.has(w)) {
      const known = row.get(w);
      return known === IN_PROGRESS ? undefined : known;
    }
    row.set(w, IN_PROGRESS);
    const result = this.#compare(r, w);
    row.set(w, result);
    return result;
  }

  #compare(r: Node, w: Node): Failure | undefined {
    if (w.types !== undefined) {
      for (const branch of w.types) {
        const failure = this.check(r, branch);
        if (failure !== undefined) return failure;
      }
      return undefined;
    }
    if (r.types !== undefined) return r.types.some((branch) => this.check(branch, w) === undefined) ? undefined : mismatch(r, w);
    if (r.typeName !== w.typeName) return PROMOTIONS[r.typeName]?.includes(w.typeName) === true ? undefined : mismatch(r, w);
    switch (r.typeName) {
      case 'array':
        return within('[]', this.check(required(r.itemsType), required(w.itemsType)));
      case 'map':
        return within('{}', this.check(required(r.valuesType), required(w.valuesType)));
      case 'record':
        return this.#names(r, w) ?? this.#fields(r, w);
      case 'enum':
        return this.#names(r, w) ?? symbols(r, w);
      case 'fixed':
        return this.#names(r, w) ?? (r.size === w.size ? undefined : fail(`writer fixed "${w.name}" has size ${w.size}, the reader's has ${r.size}`));
      default:
        return undefined; // the same primitive type
    }
  }

  #names(r: Node, w: Node): Failure | undefined {
    const rName = required(r.name);
    const wName = required(w.name);
    const rShort = unqualified(rName);
    const wShort = unqualified(wName);
    const readerAliases = r.aliases ?? [];
    const matches = rShort === wShort || readerAliases.some((a) => unqualified(a) === wShort) || (w.aliases ?? []).some((a) => unqualified(a) === rShort);
    if (!matches) return fail(`writer ${w.typeName} "${wName}" cannot be read as "${rName}": no name or alias matches`);
    if (wName !== rName && !readerAliases.includes(wName)) addTo(this.typeAliases, rName, wName);
    return undefined;
  }

  #fields(r: Node, w: Node): Failure | undefined {
    const writerFields = w.fields ?? [];
    for (const rf of r.fields ?? []) {
      const direct = writerFields.filter((wf) => wf.name === rf.name || rf.aliases.includes(wf.name));
      const found = direct.length > 0 ? direct : writerFields.filter((wf) => wf.aliases.includes(rf.name));
      const [wf, other] = found;
      if (other !== undefined) return { at: [rf.name], reason: `matches more than one writer field: ${found.map((f) => `"${f.name}"`).join(', ')}` };
      if (wf === undefined) {
        if (rf.defaultValue() === undefined)
          return { at: [rf.name], reason: `writer record "${w.name}" has no such field and the reader field has no default` };
        continue;
      }
      const failure = within(rf.name, this.check(rf.type, wf.type));
      if (failure !== undefined) return failure;
      if (wf.name !== rf.name && !rf.aliases.includes(wf.name)) {
        let byField = this.fieldAliases.get(required(r.name));
        if (byField === undefined) {
          byField = new Map();
          this.fieldAliases.set(required(r.name), byField);
        }
        addTo(byField, rf.name, wf.name);
      }
    }
    return undefined;
  }
}

function symbols(r: Node, w: Node): Failure | undefined {
  const readerSymbols = r.symbols ?? [];
  const missing = (w.symbols ?? []).filter((s) => !readerSymbols.includes(s));
  if (missing.length === 0 || r.default !== undefined) return undefined;
  return fail(`writer enum "${w.name}" has symbols ${JSON.stringify(missing)} that the reader lacks, and the reader enum has no default`);
}

/** The reader schema again, with the writer names the walk found as extra aliases. */
function withAliases(reader: Type, walk: Walk): Type {
  // avsc exports full names, so they are the walk's keys. A leading dot keeps an alias absolute:
  // without it avsc would put a writer name from the null namespace into the reader's namespace.
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const schema = node as {
      name?: unknown;
      aliases?: string[];
      fields?: Array<{ name: string; type: unknown; aliases?: string[] }>;
      items?: unknown;
      values?: unknown;
    };
    if (typeof schema.name === 'string') {
      const extra = walk.typeAliases.get(schema.name);
      if (extra !== undefined) schema.aliases = [...(schema.aliases ?? []), ...[...extra].map((n) => `.${n}`)];
      const byField = walk.fieldAliases.get(schema.name);
      for (const field of schema.fields ?? []) {
        const extraField = byField?.get(field.name);
        if (extraField !== undefined) field.aliases = [...(field.aliases ?? []), ...extraField];
        visit(field.type);
      }
    }
    visit(schema.items);
    visit(schema.values);
  };
  const schema = reader.schema({ exportAttrs: true });
  visit(schema);
  return avro.Type.forSchema(schema);
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set === undefined) map.set(key, new Set([value]));
  else set.add(value);
}

function mismatch(r: Node, w: Node): Failure {
  return fail(`writer ${describe(w)} cannot be read as ${describe(r)}`);
}

function fail(reason: string): Failure {
  return { at: [], reason };
}

function within(segment: string, failure: Failure | undefined): Failure | undefined {
  return failure === undefined ? undefined : { at: [segment, ...failure.at], reason: failure.reason };
}

/** Compact schema text for messages: named types by name, never their whole definition. */
function describe(t: Node): string {
  if (t.types !== undefined) return `[${t.types.map(describe).join(',')}]`;
  if (t.name !== undefined) return JSON.stringify(t.name);
  if (t.itemsType !== undefined) return `{"type":"array","items":${describe(t.itemsType)}}`;
  if (t.valuesType !== undefined) return `{"type":"map","values":${describe(t.valuesType)}}`;
  return JSON.stringify(t.typeName);
}

/** `tow_and_go[].segment_id`; `(root)` for the top-level type. */
function formatPath(at: readonly string[]): string {
  if (at.length === 0) return '(root)';
  return at.reduce((text, segment) => (segment === '[]' || segment === '{}' || text === '' ? text + segment : `${text}.${segment}`), '');
}

function unqualified(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** avsc always sets these for the type names that reach here; a missing one is a bug. */
function required<T>(value: T | undefined): T {
  if (value === undefined) throw new TypeError('avsc type is missing an expected property');
  return value;
}
