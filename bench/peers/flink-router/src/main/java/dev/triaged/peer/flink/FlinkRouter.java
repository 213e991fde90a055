package dev.triaged.peer.flink;

import dev.triaged.peer.core.Decoder;
import dev.triaged.peer.core.Engine;
import dev.triaged.peer.core.Event;
import dev.triaged.peer.core.Items;
import dev.triaged.peer.core.Rules;
import dev.triaged.peer.core.TraceState;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * triaged's join-and-route job on Apache Flink (DataStream API), as a JVM shop would write it:
 * a bounded KafkaSource over both input topics (from the earliest offsets to the end offsets at
 * start), decoded in the source (router-core, the same decoding as the Kafka Streams peer),
 * keyBy(trace id), a KeyedProcessFunction holding each trace in keyed ValueState (the heap
 * state backend: objects, no serialization per access) with timers for the close deadline and
 * the late-feedback window, and one side output per destination, each to its own KafkaSink.
 *
 * <p>Time is the arrival time (ingestion time: each record stamped with the wall clock as the
 * source reads it, watermarks following the wall clock), as `triaged run` uses it: a trace
 * closes decision_wait after its last span arrived, root_grace after its ended root arrived,
 * max_wait after it opened. At the end of the bounded input the final watermark closes every
 * open trace, as `triaged replay` does at end of input.
 *
 * <p>Usage: FlinkRouter BOOTSTRAP SPANS FEEDBACK OUT_PREFIX PARALLELISM. Prints one JSON line:
 * messages processed, items routed per destination, seconds.
 */
public final class FlinkRouter {
  static final List<OutputTag<Tuple2<String, byte[]>>> TAGS = new ArrayList<>();

  static {
    for (String d : Rules.DESTINATIONS) {
      TAGS.add(new OutputTag<>(d, TypeInformation.of(new org.apache.flink.api.common.typeinfo.TypeHint<Tuple2<String, byte[]>>() {})));
    }
  }

  /** A trace in keyed state: the rules' summary and the messages, for the routed items. */
  public static final class Held {
    public TraceState state;
    public List<byte[]> spans = new ArrayList<>(4);
    public List<byte[]> feedback = new ArrayList<>(2);

    public Held() {}
  }

  static final class Decode implements KafkaRecordDeserializationSchema<Event> {
    final String spansTopic;

    Decode(String spansTopic) {
      this.spansTopic = spansTopic;
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Event> out) {
      if (record.value() == null) return;
      String key = record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8);
      List<Event> events = Decoder.decode(record.value(), key, record.topic().equals(spansTopic));
      if (events == null) {
        // A message triaged dead-letters: counted by the join as an event of no trace.
        Event invalid = new Event();
        invalid.traceId = "";
        out.collect(invalid);
        return;
      }
      for (Event e : events) out.collect(e);
      if (events.isEmpty()) {
        Event none = new Event();
        none.traceId = "";
        out.collect(none);
      }
    }

    @Override
    public TypeInformation<Event> getProducedType() {
      return TypeInformation.of(Event.class);
    }
  }

  /** Watermarks at the wall clock: event time is arrival time. */
  static final class WallClock implements WatermarkGenerator<Event> {
    @Override
    public void onEvent(Event event, long timestamp, WatermarkOutput output) {}

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
      output.emitWatermark(new Watermark(System.currentTimeMillis() - 1));
    }
  }

  static final class Join extends KeyedProcessFunction<String, Event, Void> {
    transient ValueState<Held> traces;
    transient LongCounter messages, invalid, traceCount;
    transient LongCounter[] routed;

    @Override
    public void open(OpenContext context) {
      traces = getRuntimeContext().getState(new ValueStateDescriptor<>("trace", Held.class));
      messages = counter("events");
      invalid = counter("unjoined");
      traceCount = counter("traces");
      routed = new LongCounter[Rules.DESTINATIONS.length];
      for (int d = 0; d < routed.length; ++d) routed[d] = counter("routed." + Rules.DESTINATIONS[d]);
    }

    LongCounter counter(String name) {
      LongCounter c = new LongCounter();
      getRuntimeContext().addAccumulator(name, c);
      return c;
    }

    @Override
    public void processElement(Event e, Context ctx, Collector<Void> out) throws Exception {
      messages.add(1);
      if (e.traceId.isEmpty()) {
        invalid.add(1);
        return;
      }
      long now = ctx.timestamp();
      Held h = traces.value();
      if (h == null) {
        h = new Held();
        h.state = Engine.open(now);
        traceCount.add(1);
      } else if (Engine.closeIfDue(h.state, now)) {
        route(e.traceId, h, false, h.state.closedAt, ctx);
        ctx.timerService().registerEventTimeTimer(h.state.expiresAt);
      }
      (e.spanTopic ? h.spans : h.feedback).add(e.raw);
      boolean forgotten = h.state.forgotten;
      int what = Engine.add(h.state, e, now);
      if (forgotten) ctx.timerService().registerEventTimeTimer(h.state.expiresAt); // a new late window
      if (what == Engine.NOTHING) {
        ctx.timerService().registerEventTimeTimer(h.state.deadline);
      } else {
        route(e.traceId, h, what == Engine.LATE, now, ctx);
        if (what == Engine.CLOSE) ctx.timerService().registerEventTimeTimer(h.state.expiresAt);
      }
      traces.update(h);
    }

    @Override
    public void onTimer(long at, OnTimerContext ctx, Collector<Void> out) throws Exception {
      Held h = traces.value();
      if (h == null) return;
      TraceState t = h.state;
      if (!t.closed) {
        if (t.deadline != at) return; // an earlier deadline, moved by a later span
        Engine.close(t, at);
        route(ctx.getCurrentKey(), h, false, at, ctx);
        ctx.timerService().registerEventTimeTimer(t.expiresAt);
        traces.update(h);
      } else if (!t.forgotten && at >= t.expiresAt) {
        Engine.forget(t);
        h.spans.clear();
        h.feedback.clear();
        traces.update(h);
      }
    }

    void route(String traceId, Held h, boolean late, long now, Context ctx) {
      int pairs = Rules.evaluate(h.state, traceId);
      for (int p = 0; pairs != 0; ++p, pairs >>>= 1) {
        if ((pairs & 1) == 0) continue;
        int d = Rules.PAIR_DEST[p];
        ctx.output(TAGS.get(d), Tuple2.of(traceId,
            Items.item(traceId, h.state, p, late, now, h.spans, h.feedback)));
        routed[d].add(1);
      }
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: FlinkRouter BOOTSTRAP SPANS FEEDBACK OUT_PREFIX PARALLELISM");
      System.exit(2);
    }
    String bootstrap = args[0], spans = args[1], feedback = args[2], out = args[3];
    int parallelism = Integer.parseInt(args[4]);
    long t0 = System.nanoTime();

    Configuration conf = new Configuration();
    conf.setString("state.backend.type", "hashmap");
    conf.setString("pipeline.auto-watermark-interval", "100 ms");
    conf.setString("taskmanager.memory.network.min", "32mb");
    conf.setString("taskmanager.memory.network.max", "32mb");
    conf.setString("rest.bind-port", "0");
    StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);

    KafkaSource<Event> source = KafkaSource.<Event>builder()
        .setBootstrapServers(bootstrap)
        .setTopics(spans, feedback)
        .setGroupId(out + "-flink-router-" + ProcessHandle.current().pid())
        .setStartingOffsets(OffsetsInitializer.earliest())
        .setBounded(OffsetsInitializer.latest())
        .setDeserializer(new Decode(spans))
        .setProperty("commit.offsets.on.checkpoint", "false")
        .build();
    WatermarkStrategy<Event> arrival = WatermarkStrategy.<Event>forGenerator(c -> new WallClock())
        .withTimestampAssigner((e, ts) -> System.currentTimeMillis());
    DataStream<Event> events = env.fromSource(source, arrival, "inputs");
    SingleOutputStreamOperator<Void> joined =
        events.keyBy(e -> e.traceId).process(new Join()).name("join");
    for (int d = 0; d < Rules.DESTINATIONS.length; ++d) {
      String topic = out + "." + Rules.DESTINATIONS[d];
      KafkaSink<Tuple2<String, byte[]>> sink = KafkaSink.<Tuple2<String, byte[]>>builder()
          .setBootstrapServers(bootstrap)
          .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
          .setRecordSerializer((KafkaRecordSerializationSchema<Tuple2<String, byte[]>>) (item, context, timestamp) ->
              new ProducerRecord<>(topic, item.f0.getBytes(StandardCharsets.UTF_8), item.f1))
          .build();
      joined.getSideOutput(TAGS.get(d)).sinkTo(sink).name(Rules.DESTINATIONS[d]);
    }
    JobExecutionResult result = env.execute("flink-router");
    double seconds = (System.nanoTime() - t0) / 1e9;
    Map<String, Object> routed = new LinkedHashMap<>();
    long total = 0;
    for (String d : Rules.DESTINATIONS) {
      Long n = result.getAccumulatorResult("routed." + d);
      routed.put(d, n == null ? 0 : n);
      total += n == null ? 0 : n;
    }
    StringBuilder line = new StringBuilder("{\"peer\":\"flink\",\"events\":");
    Long messages = result.getAccumulatorResult("events");
    line.append(messages == null ? 0 : messages);
    line.append(",\"routed\":").append(total).append(",\"by_destination\":{");
    boolean first = true;
    for (Map.Entry<String, Object> e : routed.entrySet()) {
      line.append(first ? "" : ",").append('"').append(e.getKey()).append("\":").append(e.getValue());
      first = false;
    }
    line.append("},\"traces\":").append((Long) result.getAccumulatorResult("traces"));
    line.append(",\"seconds\":").append(String.format(java.util.Locale.ROOT, "%.3f", seconds)).append('}');
    System.out.println(line);
  }
}
