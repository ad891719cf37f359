// Kafka Streams side of bench/compare.py: the same logic as pygoka's click count, join and table
// recovery, with Kafka Streams' default RocksDB state stores.
//
//   count   BROKERS APP_ID INPUT STATE_DIR                 count per key (DSL count, store "counts")
//   join    BROKERS APP_ID INPUT STATE_DIR PROFILES OUTPUT  join each click with the co-partitioned
//           profile table, count per key (store "counts") and emit "<profile>,<count>" to OUTPUT
//   recover BROKERS APP_ID INPUT STATE_DIR                 restore store "counts" from its preloaded
//           changelog APP_ID-counts-changelog, print "RECOVERED <keys> <sum of values>" and exit
//
// count and join run until SIGTERM. Every mode prints "RUNNING" once the instance is running, so the
// harness can tell startup from processing; completion is judged by the harness from the committed
// offsets of the group (APP_ID) and the result from the changelog or output topic.
package bench;

import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

public final class KStreamsBench {
    private KStreamsBench() {}

    /** CountEmit counts per key in a RocksDB store and forwards "<profile>,<count>" for every click. */
    static final class CountEmit implements Processor<String, String, String, String> {
        private ProcessorContext<String, String> context;
        private KeyValueStore<String, Long> store;

        @Override
        public void init(ProcessorContext<String, String> context) {
            this.context = context;
            this.store = context.getStateStore("counts");
        }

        @Override
        public void process(Record<String, String> record) {
            Long previous = store.get(record.key());
            long next = previous == null ? 1 : previous + 1;
            store.put(record.key(), next);
            context.forward(record.withValue(record.value() + "," + next));
        }
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String brokers = args[1];
        String appId = args[2];
        String input = args[3];
        String stateDir = args[4];
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        // pygoka and Goka commit every second; Kafka Streams' at-least-once default is 30 s.
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
        // Leave the group on close (Kafka Streams does not by default), so the harness can delete it at once.
        props.put(StreamsConfig.consumerPrefix("internal.leave.group.on.close"), true);

        StreamsBuilder builder = new StreamsBuilder();
        if (mode.equals("count") || mode.equals("recover")) {
            builder.stream(input, Consumed.with(Serdes.String(), Serdes.ByteArray()))
                .groupByKey()
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
                    .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()));
        } else if (mode.equals("join")) {
            String profiles = args[5];
            String output = args[6];
            builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("counts"),
                Serdes.String(), Serdes.Long()));
            KTable<String, String> table = builder.table(profiles, Consumed.with(Serdes.String(), Serdes.String()));
            KStream<String, byte[]> clicks = builder.stream(input, Consumed.with(Serdes.String(), Serdes.ByteArray()));
            clicks.join(table, (click, profile) -> profile)
                .process(CountEmit::new, "counts")
                .to(output, Produced.with(Serdes.String(), Serdes.String()));
        } else {
            throw new IllegalArgumentException("unknown mode " + mode);
        }

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) {
                running.countDown();
            }
            if (now == KafkaStreams.State.ERROR) {
                System.err.println("kstreams: ERROR state");
                System.exit(2);
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(java.time.Duration.ofSeconds(30));
            stopped.countDown();
        }));
        streams.start();
        running.await();
        System.out.println("RUNNING");
        System.out.flush();
        if (mode.equals("recover")) {
            ReadOnlyKeyValueStore<String, Long> store = streams.store(
                StoreQueryParameters.fromNameAndType("counts", QueryableStoreTypes.keyValueStore()));
            long keys = 0;
            long sum = 0;
            try (KeyValueIterator<String, Long> all = store.all()) {
                while (all.hasNext()) {
                    KeyValue<String, Long> entry = all.next();
                    keys++;
                    sum += entry.value;
                }
            }
            System.out.println("RECOVERED " + keys + " " + sum);
            System.out.flush();
            System.exit(0);
        }
        stopped.await(1, TimeUnit.DAYS);
    }
}
