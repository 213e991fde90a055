package dev.triaged.peer;

import dev.triaged.peer.core.Decoder;
import dev.triaged.peer.core.Engine;
import dev.triaged.peer.core.Event;
import dev.triaged.peer.core.Items;
import dev.triaged.peer.core.Rules;
import dev.triaged.peer.core.TraceCodec;
import dev.triaged.peer.core.TraceState;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * triaged's join-and-route job on Kafka Streams (the Processor API), as a JVM shop would write
 * it: the two input topics, co-partitioned by trace id, feed one processor that decodes each
 * message (router-core: the same decoding, rules, XXH64 sampling and close / late-feedback /
 * routed-once semantics as the Flink peer), keeps per trace a compact binary summary in the
 * `traces` store and each message as received in the `events` store (key trace id / sequence,
 * read back by prefix scan only when the trace routes), both with caching on, and forwards each
 * routed item to its destination's sink.
 *
 * <p>Time is the arrival time (the wall clock when the record is processed), as `triaged run`
 * uses it: a trace closes decision_wait after its last span arrived, root_grace after its ended
 * root arrived, max_wait after it opened (a wall-clock punctuator every 100 ms closes what is
 * due, from a deadline queue per task); events for a closed trace within late_feedback_window
 * re-evaluate it at once.
 *
 * <p>Usage: Router BOOTSTRAP SPANS FEEDBACK OUT_PREFIX EXPECTED_MESSAGES STATE_DIR. Exits when
 * EXPECTED_MESSAGES are processed and every trace is decided; prints one JSON line.
 */
public final class Router {
  static final AtomicLong PROCESSED = new AtomicLong();
  static final AtomicLong OPEN = new AtomicLong();
  static final AtomicLong TRACES = new AtomicLong();
  static final AtomicLong INVALID = new AtomicLong();
  static final AtomicLongArray ROUTED = new AtomicLongArray(Rules.DESTINATIONS.length);

  static final Serde<TraceState> STATE_SERDE = Serdes.serdeFrom(
      (topic, state) -> state == null ? null : TraceCodec.encode(state),
      (topic, bytes) -> TraceCodec.decode(bytes));

  record Timer(long at, String traceId) {}

  static final class Join implements Processor<String, byte[], String, byte[]> {
    private final String spansTopic;
    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, TraceState> traces;
    private KeyValueStore<String, byte[]> events;
    private final PriorityQueue<Timer> timers = new PriorityQueue<>((a, b) -> Long.compare(a.at, b.at));

    Join(String spansTopic) {
      this.spansTopic = spansTopic;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
      this.context = context;
      this.traces = context.getStateStore("traces");
      this.events = context.getStateStore("events");
      context.schedule(Duration.ofMillis(100), PunctuationType.WALL_CLOCK_TIME, this::due);
    }

    @Override
    public void process(Record<String, byte[]> record) {
      try {
        if (record.value() == null) {
          INVALID.incrementAndGet();
          return;
        }
        boolean spanTopic = context.recordMetadata().map(m -> m.topic().equals(spansTopic)).orElse(false);
        List<Event> decoded = Decoder.decode(record.value(), record.key(), spanTopic);
        if (decoded == null) {
          INVALID.incrementAndGet(); // a message triaged dead-letters
          return;
        }
        long now = System.currentTimeMillis();
        for (Event e : decoded) add(e, now);
      } finally {
        PROCESSED.incrementAndGet();
      }
    }

    private void add(Event e, long now) {
      TraceState t = traces.get(e.traceId);
      if (t == null) {
        t = Engine.open(now);
        OPEN.incrementAndGet();
        TRACES.incrementAndGet();
      } else if (Engine.closeIfDue(t, now)) {
        closed(e.traceId, t, t.closedAt);
      }
      events.put(eventKey(e.traceId, e.spanTopic, t.eventCount), e.raw);
      boolean forgotten = t.forgotten;
      int what = Engine.add(t, e, now);
      if (forgotten) timers.add(new Timer(t.expiresAt, e.traceId)); // a new late window
      if (what == Engine.NOTHING) {
        timers.add(new Timer(t.deadline, e.traceId));
      } else if (what == Engine.CLOSE) {
        closed(e.traceId, t, now);
      } else {
        route(e.traceId, t, true, now);
      }
      traces.put(e.traceId, t);
    }

    private void closed(String traceId, TraceState t, long at) {
      OPEN.decrementAndGet();
      route(traceId, t, false, at);
      timers.add(new Timer(t.expiresAt, traceId));
    }

    static String eventKey(String traceId, boolean span, int seq) {
      return traceId + '/' + (span ? 's' : 'f') + String.format("%06d", seq);
    }

    private void due(long now) {
      while (!timers.isEmpty() && timers.peek().at <= now) {
        Timer timer = timers.poll();
        TraceState t = traces.get(timer.traceId);
        if (t == null) continue;
        if (!t.closed) {
          if (t.deadline != timer.at) continue; // moved by a later span
          Engine.close(t, timer.at);
          closed(timer.traceId, t, timer.at);
          traces.put(timer.traceId, t);
        } else if (!t.forgotten && timer.at >= t.expiresAt) {
          Engine.forget(t);
          List<String> keys = new ArrayList<>();
          try (KeyValueIterator<String, byte[]> it = events.prefixScan(timer.traceId + "/", new StringSerializer())) {
            while (it.hasNext()) keys.add(it.next().key);
          }
          for (String k : keys) events.delete(k);
          traces.put(timer.traceId, t);
        }
      }
    }

    private void route(String traceId, TraceState t, boolean late, long now) {
      int pairs = Rules.evaluate(t, traceId);
      if (pairs == 0) return;
      List<byte[]> spans = new ArrayList<>(4), feedback = new ArrayList<>(2);
      try (KeyValueIterator<String, byte[]> it = events.prefixScan(traceId + "/", new StringSerializer())) {
        while (it.hasNext()) {
          KeyValue<String, byte[]> kv = it.next();
          (kv.key.charAt(traceId.length() + 1) == 's' ? spans : feedback).add(kv.value);
        }
      }
      for (int p = 0; pairs != 0; ++p, pairs >>>= 1) {
        if ((pairs & 1) == 0) continue;
        int d = Rules.PAIR_DEST[p];
        context.forward(new Record<>(traceId, Items.item(traceId, t, p, late, now, spans, feedback), now),
            Rules.DESTINATIONS[d]);
        ROUTED.incrementAndGet(d);
      }
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: Router BOOTSTRAP SPANS FEEDBACK OUT_PREFIX EXPECTED_MESSAGES STATE_DIR");
      System.exit(2);
    }
    String bootstrap = args[0], spans = args[1], feedback = args[2], out = args[3];
    long expected = Long.parseLong(args[4]);
    Properties p = new Properties();
    // A fresh group each run: the corpus is read from the start.
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, out + "-streams-router-" + ProcessHandle.current().pid());
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Runtime.getRuntime().availableProcessors());
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 10L * 1024 * 1024);
    p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    p.put(StreamsConfig.producerPrefix("enable.idempotence"), true);

    Topology t = new Topology();
    t.addSource("spans", Serdes.String().deserializer(), Serdes.ByteArray().deserializer(), spans);
    t.addSource("feedback", Serdes.String().deserializer(), Serdes.ByteArray().deserializer(), feedback);
    t.addProcessor("join", () -> new Join(spans), "spans", "feedback");
    // In memory without a changelog, as triaged runs the bench (no trace store), and cached.
    t.addStateStore(Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore("traces"), Serdes.String(), STATE_SERDE)
        .withCachingEnabled().withLoggingDisabled(), "join");
    t.addStateStore(Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore("events"), Serdes.String(), Serdes.ByteArray())
        .withCachingEnabled().withLoggingDisabled(), "join");
    for (String d : Rules.DESTINATIONS) {
      t.addSink(d, out + "." + d, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "join");
    }

    long t0 = System.nanoTime();
    KafkaStreams streams = new KafkaStreams(t, p);
    streams.start();
    while (PROCESSED.get() < expected || OPEN.get() > 0) {
      if (streams.state() == KafkaStreams.State.ERROR || streams.state() == KafkaStreams.State.NOT_RUNNING) {
        System.err.println("streams-router: the application stopped: " + streams.state());
        System.exit(1);
      }
      Thread.sleep(20);
      if (System.getenv("PEER_PROGRESS") != null && (System.nanoTime() - t0) / 1_000_000 % 1000 < 20) {
        System.err.printf("%.1f s: %d processed, %d open%n", (System.nanoTime() - t0) / 1e9, PROCESSED.get(), OPEN.get());
      }
    }
    streams.close(Duration.ofSeconds(30)); // flushes the producers: every item is written
    double seconds = (System.nanoTime() - t0) / 1e9;
    StringBuilder line = new StringBuilder("{\"peer\":\"kafka-streams\",\"processed\":").append(PROCESSED.get());
    long total = 0;
    StringBuilder by = new StringBuilder();
    for (int d = 0; d < Rules.DESTINATIONS.length; ++d) {
      total += ROUTED.get(d);
      by.append(d == 0 ? "" : ",").append('"').append(Rules.DESTINATIONS[d]).append("\":").append(ROUTED.get(d));
    }
    line.append(",\"routed\":").append(total).append(",\"by_destination\":{").append(by).append('}');
    line.append(",\"traces\":").append(TRACES.get()).append(",\"invalid\":").append(INVALID.get());
    line.append(",\"seconds\":").append(String.format(java.util.Locale.ROOT, "%.3f", seconds)).append('}');
    System.out.println(new String(line.toString().getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8));
  }
}
