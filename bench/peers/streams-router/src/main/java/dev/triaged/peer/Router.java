package dev.triaged.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * triaged's benchmark job written the way a JVM shop would: a Kafka Streams application that
 * joins spans and feedback per trace id (the topics are co-partitioned by it) in a key-value
 * store, closes a trace one second after its last event, evaluates the benchmark's rules
 * (bench/rules.yaml: thumbs-down, low judge faithfulness, slow, errors, tool failures, reviewer
 * flags, escalations) and publishes the routed trace, spans and feedback included, to a review
 * topic and a dataset topic.
 *
 * <p>It is kind to itself where triaged is not: an in-memory store without a changelog, and
 * deadlines kept in a plain map instead of scanning the store.
 *
 * <p>Usage: Router BOOTSTRAP SPANS FEEDBACK OUT_PREFIX EXPECTED_MESSAGES STATE_DIR. Exits when
 * EXPECTED_MESSAGES are processed and every trace is decided; prints one JSON line.
 */
public final class Router {
  static final ObjectMapper JSON = new ObjectMapper();
  static final AtomicLong PROCESSED = new AtomicLong();
  static final AtomicLong OPEN = new AtomicLong();
  static final AtomicLong ROUTED = new AtomicLong();
  static final long DECISION_WAIT_MS = 1000;

  /** What the rules need of a trace, and its raw events for the routed item. */
  public static final class TraceState {
    public List<String> spans = new ArrayList<>();
    public List<String> feedback = new ArrayList<>();
    public boolean error;
    public boolean toolError;
    public long minStartNs = Long.MAX_VALUE;
    public long maxEndNs = Long.MIN_VALUE;
    public boolean thumbsDown;
    public Double faithfulness;
    public boolean reviewerFlag;
    public boolean escalated;
  }

  static final Serde<TraceState> STATE_SERDE =
      Serdes.serdeFrom(
          (topic, state) -> {
            try {
              return JSON.writeValueAsBytes(state);
            } catch (Exception e) {
              throw new IllegalStateException(e);
            }
          },
          (topic, bytes) -> {
            try {
              return bytes == null ? null : JSON.readValue(bytes, TraceState.class);
            } catch (Exception e) {
              throw new IllegalStateException(e);
            }
          });

  static final class Join implements Processor<String, String, String, String> {
    private final String spansTopic;
    private ProcessorContext<String, String> context;
    private KeyValueStore<String, TraceState> store;
    private final LinkedHashMap<String, Long> lastSeen = new LinkedHashMap<>(16, 0.75f, true);

    Join(String spansTopic) {
      this.spansTopic = spansTopic;
    }

    @Override
    public void init(ProcessorContext<String, String> context) {
      this.context = context;
      this.store = context.getStateStore("traces");
      context.schedule(Duration.ofMillis(200), PunctuationType.WALL_CLOCK_TIME, this::closeDue);
    }

    @Override
    public void process(Record<String, String> record) {
      PROCESSED.incrementAndGet();
      JsonNode root;
      try {
        root = JSON.readTree(record.value());
      } catch (Exception e) {
        return; // a real deployment would dead-letter it
      }
      boolean span = context.recordMetadata().map(m -> m.topic().equals(spansTopic)).orElse(false);
      String traceId = record.key();
      if (traceId == null) return;
      TraceState state = store.get(traceId);
      if (state == null) {
        state = new TraceState();
        OPEN.incrementAndGet();
      }
      if (span) {
        addSpans(state, root);
        state.spans.add(record.value());
      } else {
        addFeedback(state, root);
        state.feedback.add(record.value());
      }
      store.put(traceId, state);
      lastSeen.put(traceId, System.currentTimeMillis());
    }

    private void closeDue(long now) {
      Iterator<Map.Entry<String, Long>> it = lastSeen.entrySet().iterator();
      while (it.hasNext()) {
        Map.Entry<String, Long> e = it.next();
        if (now - e.getValue() < DECISION_WAIT_MS) break; // access order: the rest are newer
        TraceState state = store.delete(e.getKey());
        it.remove();
        if (state == null) continue;
        OPEN.decrementAndGet();
        route(e.getKey(), state, now);
      }
    }

    private void route(String traceId, TraceState s, long now) {
      double durationMs = s.maxEndNs >= s.minStartNs ? (s.maxEndNs - s.minStartNs) / 1e6 : 0;
      double u = (traceId.hashCode() & 0x7fffffff) / (double) Integer.MAX_VALUE;
      if (s.thumbsDown) emit(traceId, s, "thumbs-down", "review", "dataset", now);
      if (s.faithfulness != null && s.faithfulness < 0.5 && u < 0.25) {
        emit(traceId, s, "low-faithfulness", "review", null, now);
      }
      if (durationMs > 5000 && u < 0.10) emit(traceId, s, "slow", "dataset", null, now);
      if (s.error) emit(traceId, s, "errors", "review", null, now);
      if (s.toolError) emit(traceId, s, "tool-failures", "review", "dataset", now);
      if (s.reviewerFlag) emit(traceId, s, "reviewer-flags", "dataset", null, now);
      if (s.escalated) emit(traceId, s, "escalations", "review", null, now);
    }

    private void emit(String traceId, TraceState s, String rule, String to, String also, long now) {
      StringBuilder b = new StringBuilder(256 + 1024 * s.spans.size());
      b.append("{\"trace_id\":\"").append(traceId).append("\",\"rule\":\"").append(rule);
      b.append("\",\"spans\":[").append(String.join(",", s.spans));
      b.append("],\"feedback\":[").append(String.join(",", s.feedback)).append("]}");
      String item = b.toString();
      context.forward(new Record<>(traceId, item, now), to);
      ROUTED.incrementAndGet();
      if (also != null) {
        context.forward(new Record<>(traceId, item, now), also);
        ROUTED.incrementAndGet();
      }
    }
  }

  static void addSpans(TraceState state, JsonNode root) {
    if (root.has("resourceSpans")) {
      for (JsonNode rs : root.path("resourceSpans")) {
        for (JsonNode ss : rs.path("scopeSpans")) {
          for (JsonNode sp : ss.path("spans")) {
            boolean error = sp.path("status").path("code").asInt() == 2;
            String kind = "";
            for (JsonNode a : sp.path("attributes")) {
              if (a.path("key").asText().equals("openinference.span.kind")) {
                kind = a.path("value").path("stringValue").asText();
              }
            }
            span(state, error, kind, sp.path("startTimeUnixNano").asLong(),
                sp.path("endTimeUnixNano").asLong());
          }
        }
      }
      return;
    }
    String kind = root.path("kind").asText(root.path("attributes").path("openinference.span.kind").asText());
    span(state, root.path("status").asText().equals("error"), kind,
        root.path("start_time_unix_nano").asLong(), root.path("end_time_unix_nano").asLong());
  }

  static void span(TraceState state, boolean error, String kind, long start, long end) {
    state.error |= error;
    state.toolError |= error && kind.equalsIgnoreCase("TOOL");
    if (start > 0) state.minStartNs = Math.min(state.minStartNs, start);
    if (end > 0) state.maxEndNs = Math.max(state.maxEndNs, end);
  }

  static void addFeedback(TraceState state, JsonNode root) {
    String name;
    String label = null;
    Double score = null;
    String source = root.path("source").asText("");
    if (root.has("thumbs")) {
      name = "thumbs";
      label = root.path("thumbs").asText();
    } else if (root.has("gen_ai.evaluation.name")) {
      name = root.path("gen_ai.evaluation.name").asText();
      label = root.path("gen_ai.evaluation.score.label").asText(null);
      score = number(root.path("gen_ai.evaluation.score.value"));
      source = "llm_judge";
    } else if (root.has("result")) { // Phoenix
      name = root.path("name").asText();
      label = root.path("result").path("label").asText(null);
      score = number(root.path("result").path("score"));
    } else if (root.has("key")) { // LangSmith
      name = root.path("key").asText();
      score = number(root.path("score"));
      label = root.path("value").asText(null);
    } else if (root.has("dataType")) { // Langfuse
      name = root.path("name").asText();
      JsonNode v = root.path("value");
      if (v.isNumber()) score = v.asDouble(); else label = v.asText();
      if (source.equals("EVAL")) source = "llm_judge";
    } else {
      name = root.path("name").asText();
      label = root.path("label").asText(null);
      score = number(root.path("score"));
    }
    switch (name) {
      case "thumbs" -> state.thumbsDown |= "down".equals(label);
      case "faithfulness" -> {
        if (score != null && source.equals("llm_judge")) state.faithfulness = score;
      }
      case "hallucination" -> state.reviewerFlag |= "hallucinated".equals(label);
      case "correctness" -> state.reviewerFlag |= score != null && score == 0;
      case "escalation" -> state.escalated |= source.equals("support");
      default -> {}
    }
  }

  static Double number(JsonNode n) {
    return n.isNumber() ? n.asDouble() : null;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: Router BOOTSTRAP SPANS FEEDBACK OUT_PREFIX EXPECTED_MESSAGES STATE_DIR");
      System.exit(2);
    }
    String bootstrap = args[0], spans = args[1], feedback = args[2], out = args[3];
    long expected = Long.parseLong(args[4]);
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, out + "-streams-router");
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Runtime.getRuntime().availableProcessors());
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    p.put(StreamsConfig.producerPrefix("enable.idempotence"), true);

    Topology t = new Topology();
    t.addSource("spans", Serdes.String().deserializer(), Serdes.String().deserializer(), spans);
    t.addSource("feedback", Serdes.String().deserializer(), Serdes.String().deserializer(), feedback);
    t.addProcessor("join", () -> new Join(spans), "spans", "feedback");
    t.addStateStore(
        Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore("traces"), Serdes.String(), STATE_SERDE)
            .withLoggingDisabled(),
        "join");
    t.addSink("review", out + ".review", Serdes.String().serializer(), Serdes.String().serializer(), "join");
    t.addSink("dataset", out + ".dataset", Serdes.String().serializer(), Serdes.String().serializer(), "join");

    long t0 = System.nanoTime();
    KafkaStreams streams = new KafkaStreams(t, p);
    streams.start();
    while (PROCESSED.get() < expected || OPEN.get() > 0) {
      if (streams.state() == KafkaStreams.State.ERROR || streams.state() == KafkaStreams.State.NOT_RUNNING) {
        System.err.println("streams-router: the application stopped: " + streams.state());
        System.exit(1);
      }
      Thread.sleep(50);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    streams.close(Duration.ofSeconds(30));
    System.out.println(new String(JSON.writeValueAsBytes(Map.of(
        "processed", PROCESSED.get(), "routed", ROUTED.get(), "seconds", seconds)), StandardCharsets.UTF_8));
  }
}
