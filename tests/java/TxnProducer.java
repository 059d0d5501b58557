// A transactional producer for tests, run in source-file mode:
//   scripts/kafka run tests/java/TxnProducer.java BOOTSTRAP TOPIC STEP...
// Steps: begin, send:VALUE, commit, abort, flush, and wait (read one line of stdin, print
// "waiting" first so the caller knows the steps before it are done).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnProducer {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("transactional.id", "txn-" + UUID.randomUUID());
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in));
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            for (int i = 2; i < args.length; i++) {
                String step = args[i];
                if (step.equals("begin")) {
                    producer.beginTransaction();
                } else if (step.equals("commit")) {
                    producer.commitTransaction();
                } else if (step.equals("abort")) {
                    producer.abortTransaction();
                } else if (step.equals("flush")) {
                    producer.flush();
                } else if (step.equals("wait")) {
                    System.out.println("waiting");
                    System.out.flush();
                    stdin.readLine();
                } else if (step.startsWith("send:")) {
                    producer.send(new ProducerRecord<>(args[1], step.substring(5)));
                } else {
                    throw new IllegalArgumentException("unknown step " + step);
                }
            }
        }
    }
}
