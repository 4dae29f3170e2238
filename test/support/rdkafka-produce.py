"""Produces records with librdkafka (Debian's python3-confluent-kafka), a client we did not write.

usage: rdkafka-produce.py BOOTSTRAP TOPIC COMPRESSION [TRANSACTIONAL_ID] < steps

One step per line on stdin (keys and values base64, so any bytes survive):
  record PARTITION KEY_B64 VALUE_B64
  flush                  wait until everything sent so far is acknowledged
  commit | abort         end the open transaction and begin the next (transactional only)
Exits non-zero on any delivery error.
"""

import base64
import sys

from confluent_kafka import Producer

bootstrap, topic, compression = sys.argv[1:4]
transactional_id = sys.argv[4] if len(sys.argv) > 4 else None
conf = {
    "bootstrap.servers": bootstrap,
    "compression.type": compression,
    "acks": "all",
    # One batch per partition and flush, so a test knows which batches hold what.
    "linger.ms": 100,
}
if transactional_id is not None:
    conf["transactional.id"] = transactional_id
producer = Producer(conf)
errors = []


def on_delivery(err, _msg):
    if err is not None:
        errors.append(str(err))


def flush():
    left = producer.flush(30)
    if left:
        sys.exit(f"rdkafka-produce: {left} record(s) not delivered within 30 s")


# A transaction begins at its first record, so none is left open and empty at the end.
in_transaction = False
if transactional_id is not None:
    producer.init_transactions(30)
for line in sys.stdin:
    step = line.split()
    if not step:
        continue
    if step[0] == "record":
        if transactional_id is not None and not in_transaction:
            producer.begin_transaction()
            in_transaction = True
        key = base64.b64decode(step[2])
        value = base64.b64decode(step[3])
        producer.produce(topic, partition=int(step[1]), key=key, value=value, on_delivery=on_delivery)
    elif step[0] == "flush":
        flush()
    elif step[0] == "commit":
        producer.commit_transaction(30)
        in_transaction = False
    elif step[0] == "abort":
        # librdkafka purges what is still queued on abort: flush first so the aborted records are
        # really written to the log, between the data and the abort marker.
        flush()
        producer.abort_transaction(30)
        in_transaction = False
    else:
        sys.exit(f"rdkafka-produce: unknown step {step[0]!r}")
flush()
if errors:
    sys.exit("rdkafka-produce: delivery failed: " + "; ".join(errors))
