import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produces records with Kafka's own Java client, so its compressors (snappy-java, lz4-java,
 * zstd-jni, java.util.zip) write the batches. Kafka's console producer cannot: it sends text
 * lines, and Confluent-framed Avro is binary. Run as a single-file source program:
 *   java -cp KAFKA_CLASSPATH JavaProduce.java BOOTSTRAP TOPIC COMPRESSION [TRANSACTIONAL_ID] < steps
 * Steps are the same as rdkafka-produce.py's: record PARTITION KEY_B64 VALUE_B64 | flush | commit | abort.
 */
public class JavaProduce {
  public static void main(String[] args) throws Exception {
    String topic = args[1];
    String transactionalId = args.length > 3 ? args[3] : null;
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("compression.type", args[2]);
    props.put("acks", "all");
    props.put("linger.ms", "100");
    // The default 16 KiB would split big snapshots into a batch each; one batch exercises multi-block frames.
    props.put("batch.size", "1048576");
    props.put("key.serializer", ByteArraySerializer.class.getName());
    props.put("value.serializer", ByteArraySerializer.class.getName());
    if (transactionalId != null) props.put("transactional.id", transactionalId);
    Base64.Decoder b64 = Base64.getDecoder();
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      if (transactionalId != null) producer.initTransactions();
      // A transaction begins at its first record, not after the previous one ends: closing a
      // producer with an empty open transaction stalls close() for the request timeout (30 s).
      boolean open = false;
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        String[] step = line.trim().split(" ");
        switch (step[0]) {
          case "" -> { }
          case "record" -> {
            if (transactionalId != null && !open) {
              producer.beginTransaction();
              open = true;
            }
            sent.add(producer.send(new ProducerRecord<>(topic, Integer.parseInt(step[1]), b64.decode(step[2]), b64.decode(step[3]))));
          }
          case "flush" -> producer.flush();
          case "commit" -> {
            producer.commitTransaction();
            open = false;
          }
          case "abort" -> {
            // Flushed first so the aborted records are really in the log, before the abort marker.
            producer.flush();
            producer.abortTransaction();
            open = false;
          }
          default -> throw new IllegalArgumentException("unknown step " + step[0]);
        }
      }
      producer.flush();
      // flush() and close() do not throw for a failed send; its future does.
      for (Future<RecordMetadata> f : sent) f.get();
    }
  }
}
