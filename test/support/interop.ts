/**
 * Clients nobody here wrote, for interop tests: Apache Avro's own Python library (Debian's
 * python3-avro) encodes, librdkafka (python3-confluent-kafka) produces, boto3 reads S3 back, and
 * writer schemas are registered over the registry's REST API with plain fetch, as any producer
 * does. Debian's /usr/bin/python3 on purpose: the Debian python3-* packages are installed for it.
 */
import { spawn } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';
export const REGISTRY = 'http://127.0.0.1:8081/apis/ccompat/v7';
const JSON_TYPE = 'application/vnd.schemaregistry.v1+json';

/** One record: Confluent wire format (magic 0, 4-byte big-endian id), then Avro binary of `value`, or `rawHex` as is. */
export type PythonRecord = { readonly key: string; readonly schemaId: number } & (
  | { readonly schema: unknown; readonly value: unknown }
  | { readonly rawHex: string }
);

const PRODUCE = `
import io, json, struct, sys
import avro.io, avro.schema
from confluent_kafka import Producer

job = json.load(sys.stdin)
producer = Producer({"bootstrap.servers": job["bootstrap"], "acks": "all", "enable.idempotence": True})
failures = []

def delivered(err, msg):
    if err is not None:
        failures.append(str(err))

for record in job["records"]:
    out = io.BytesIO()
    out.write(b"\\x00" + struct.pack(">I", record["schemaId"]))
    if "rawHex" in record:
        out.write(bytes.fromhex(record["rawHex"]))
    else:
        schema = avro.schema.parse(json.dumps(record["schema"]))
        avro.io.DatumWriter(schema).write(record["value"], avro.io.BinaryEncoder(out))
    producer.produce(job["topic"], key=record["key"].encode("utf-8"), value=out.getvalue(), on_delivery=delivered)
left = producer.flush(30)
if left or failures:
    sys.exit("not delivered: %d left, failures %s" % (left, failures))
print(json.dumps({"delivered": len(job["records"])}))
`;

const READ_S3 = `
import gzip, json, sys
import boto3
from botocore.config import Config

prefix, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                  aws_access_key_id="local-access-key", aws_secret_access_key="local-secret-key",
                  config=Config(s3={"addressing_style": "path"}))
bodies = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for o in page.get("Contents", []):
        got = s3.get_object(Bucket=bucket, Key=o["Key"])
        body = got["Body"].read()
        # boto3 hands back the stored bytes; Content-Encoding: gzip is the reader's to undo.
        if got.get("ContentEncoding") == "gzip":
            body = gzip.decompress(body)
        bodies[o["Key"]] = body.decode("utf-8")
print(json.dumps(bodies))
`;

function runPython(script: string, args: readonly string[], stdin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${PYTHON} exited ${String(code)}: ${err.trim()}`))));
    child.stdin.end(stdin);
  });
}

/** Encodes with python3-avro and produces with librdkafka (acks=all, idempotent); resolves once all are delivered. */
export async function producePython(topic: string, records: readonly PythonRecord[]): Promise<void> {
  await runPython(PRODUCE, [], JSON.stringify({ bootstrap: '127.0.0.1:9092', topic, records }));
}

/** Every object under the prefix, key → body (gunzipped when stored gzipped), read with boto3 (path-style, the local keys). */
export async function readS3WithBoto3(prefix: string, bucket = 'tow-and-go'): Promise<Record<string, string>> {
  return JSON.parse(await runPython(READ_S3, [prefix, bucket], '')) as Record<string, string>;
}

/** boto3's view split: the snapshot bodies, and the latest pointer parsed (undefined when there is none). */
export function withoutPointer(
  bodies: Record<string, string>,
  prefix: string,
): { snapshots: Record<string, string>; pointer: Record<string, unknown> | undefined } {
  const { [`${prefix}latest.json`]: pointer, ...snapshots } = bodies;
  return { snapshots, pointer: pointer === undefined ? undefined : (JSON.parse(pointer) as Record<string, unknown>) };
}

const CONSUME_AVRO = `
import io, json, struct, sys, urllib.request
import avro.io, avro.schema
from confluent_kafka import Consumer, TopicPartition

topic, registry = sys.argv[1], sys.argv[2]
consumer = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": "unused", "enable.auto.commit": False})
partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
ends, assigned = {}, []
for p in partitions:
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    if high > low:
        ends[p] = high
        assigned.append(TopicPartition(topic, p, low))
consumer.assign(assigned)
schemas, out = {}, []
while ends:
    m = consumer.poll(10)
    if m is None:
        sys.exit("timed out; still expecting %s" % ends)
    if m.error():
        sys.exit(str(m.error()))
    value = m.value()
    magic, schema_id = struct.unpack(">bI", value[:5])
    if schema_id not in schemas:
        with urllib.request.urlopen("%s/schemas/ids/%d" % (registry, schema_id)) as r:
            schemas[schema_id] = avro.schema.parse(json.load(r)["schema"])
    record = avro.io.DatumReader(schemas[schema_id]).read(avro.io.BinaryDecoder(io.BytesIO(value[5:])))
    out.append({"partition": m.partition(), "offset": m.offset(), "key": m.key().decode("utf-8"), "magic": magic, "schemaId": schema_id, "value": record})
    if m.offset() + 1 >= ends[m.partition()]:
        del ends[m.partition()]
consumer.close()
print(json.dumps(out))
`;

/** Every record of the topic, read with librdkafka (python3-confluent-kafka) and decoded with python3-avro (writer schema from the registry by id). */
export async function consumeAvroWithPython<V = Record<string, unknown>>(topic: string): Promise<AvroRecord<V>[]> {
  return JSON.parse(await runPython(CONSUME_AVRO, [topic, REGISTRY], '')) as AvroRecord<V>[];
}

export interface AvroRecord<V> {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  /** The Confluent wire format's first byte (0) and the schema id after it. */
  readonly magic: number;
  readonly schemaId: number;
  readonly value: V;
}

export interface RegistryAnswer {
  readonly status: number;
  readonly body: { readonly id?: number; readonly message?: string; readonly error_code?: number };
}

/** POST /subjects/{subject}/versions, as a producer registers its schema. */
export async function registerOverRest(subject: string, schema: unknown, schemaType?: 'PROTOBUF' | 'JSON'): Promise<RegistryAnswer> {
  const res = await fetch(`${REGISTRY}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': JSON_TYPE },
    body: JSON.stringify({ schema: typeof schema === 'string' ? schema : JSON.stringify(schema), ...(schemaType === undefined ? {} : { schemaType }) }),
  });
  return { status: res.status, body: (await res.json()) as RegistryAnswer['body'] };
}

/** Registers `schema` under `subject` over REST and returns its id; fails unless the registry took it. */
export async function registerSchema(subject: string, schema: unknown): Promise<number> {
  const answer = await registerOverRest(subject, schema);
  if (answer.status !== 200 || typeof answer.body.id !== 'number') throw new Error(`POST /subjects/${subject}/versions answered ${answer.status}`);
  return answer.body.id;
}

/** PUT /config/{subject}: the compatibility level the registry checks new versions of the subject against. */
export async function setCompatibility(subject: string, level: 'BACKWARD' | 'FORWARD' | 'FULL' | 'NONE'): Promise<void> {
  const res = await fetch(`${REGISTRY}/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    headers: { 'content-type': JSON_TYPE },
    body: JSON.stringify({ compatibility: level }),
  });
  if (res.status !== 200) throw new Error(`PUT /config/${subject} answered ${res.status}: ${await res.text()}`);
}
