// An independent OTLP encoder and Kafka producer, used as a witness by triaged's tests.
//
//   corpus OUTDIR [--seed N] [--traces T]
//       Deterministic LLM-app traces (seeded java.util.Random), encoded by the OpenTelemetry Java
//       SDK's own OTLP marshaler (TraceRequestMarshaler, what the SDK's OTLP exporters send), as
//       OTLP/JSON and OTLP protobuf, plus native-shape feedback for about a third of the traces.
//   produce --bootstrap HOST:PORT --topic T FILE [--key-from trace_id|none] [--report FILE]
//       Sends each line of FILE with the Apache Kafka Java producer and its default partitioner
//       (murmur2 of the key for keyed records, sticky for unkeyed ones), acks=all.
//
// Nothing here shares code with triaged: it is the reference the decoders are checked against.
package dev.triaged.witness;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.common.AttributesBuilder;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceState;
import io.opentelemetry.exporter.internal.marshal.MarshalerUtil;
import io.opentelemetry.exporter.internal.otlp.traces.TraceRequestMarshaler;
import io.opentelemetry.sdk.common.InstrumentationScopeInfo;
import io.opentelemetry.sdk.common.InstrumentationScopeInfoBuilder;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.testing.trace.TestSpanData;
import io.opentelemetry.sdk.trace.data.DelegatingSpanData;
import io.opentelemetry.sdk.trace.data.EventData;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.data.StatusData;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class Witness {
  private Witness() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) usage("no command");
    switch (args[0]) {
      case "corpus" -> corpus(args);
      case "produce" -> produce(args);
      case "-h", "--help", "help" -> {
        System.out.println(USAGE);
      }
      default -> usage("unknown command " + args[0]);
    }
  }

  private static final String USAGE =
      "usage: witness corpus OUTDIR [--seed N] [--traces T]\n"
          + "       witness produce --bootstrap HOST:PORT --topic T FILE"
          + " [--key-from trace_id|none] [--report FILE]";

  private static void usage(String why) {
    System.err.println("witness: " + why + "\n" + USAGE);
    System.exit(64);
  }

  // ---------------------------------------------------------------------------------------------
  // corpus

  private static final long BASE_NS = Instant.parse("2026-01-05T00:00:00Z").getEpochSecond() * 1_000_000_000L;
  private static final long MS = 1_000_000L;
  private static final DateTimeFormatter RFC3339_MS =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
  private static final String[] MODELS = {"gpt-4o-mini", "gpt-4.1", "claude-sonnet-4", "llama-3.1-70b-instruct"};
  // Evaluation name, label for a score >= 0.5, label below it.
  private static final String[][] EVALS = {
    {"faithfulness", "faithful", "unfaithful"},
    {"relevance", "relevant", "irrelevant"},
    {"toxicity", "toxic", "non_toxic"},
  };

  // One trace being built, and what a reader of the OTLP should find in it.
  private static final class Trace {
    final String traceId;
    final List<SpanData> spans = new ArrayList<>();
    final List<String> llmSpanIds = new ArrayList<>();
    final TreeSet<Integer> requests = new TreeSet<>();
    String rootName;
    String sessionId;
    String userId;
    boolean error;
    int evaluations;

    Trace(String traceId) {
      this.traceId = traceId;
    }

    long endNs() {
      return spans.stream().mapToLong(SpanData::getEndEpochNanos).max().orElse(0);
    }

    long startNs() {
      return spans.stream().mapToLong(SpanData::getStartEpochNanos).min().orElse(0);
    }
  }

  // The generator's state: the RNG and the resources/scopes, one instance each so that the
  // marshaler groups spans of one service and library together.
  private static final class Gen {
    final Random rng;
    final Map<String, Resource> resources = new HashMap<>();
    final Map<String, InstrumentationScopeInfo> scopes = new HashMap<>();

    Gen(long seed) {
      rng = new Random(seed);
    }

    Resource resource(String service, String env) {
      return resources.computeIfAbsent(service + "/" + env, k -> Resource.create(Attributes.builder()
          .put("service.name", service)
          .put("service.version", "1." + (service.length() % 5) + ".0")
          .put("deployment.environment", env)
          .put("telemetry.sdk.language", "java")
          .build()));
    }

    InstrumentationScopeInfo scope(String name) {
      return scopes.computeIfAbsent(name,
          n -> InstrumentationScopeInfo.builder(n).setVersion("0." + (n.length() % 9) + ".1").build());
    }

    String hex(int bytes) {
      while (true) {
        StringBuilder sb = new StringBuilder(bytes * 2);
        boolean nonZero = false;
        for (int i = 0; i < bytes; i++) {
          int b = rng.nextInt(256);
          nonZero |= b != 0;
          sb.append(Character.forDigit(b >> 4, 16)).append(Character.forDigit(b & 15, 16));
        }
        if (nonZero) return sb.toString();  // all-zero ids are invalid in OTel
      }
    }

    boolean chance(int percent) {
      return rng.nextInt(100) < percent;
    }

    long between(long lo, long hi) {
      return lo + (long) (rng.nextDouble() * (hi - lo));
    }

    <T> T pick(T[] items) {
      return items[rng.nextInt(items.length)];
    }
  }

  private static SpanData span(Trace t, Resource res, InstrumentationScopeInfo scope, String spanId,
      String parentId, String name, SpanKind kind, long start, long end, Attributes attrs,
      List<EventData> events, StatusData status) {
    SpanContext ctx = SpanContext.create(t.traceId, spanId, TraceFlags.getSampled(), TraceState.getDefault());
    SpanContext parent = parentId == null
        ? SpanContext.getInvalid()
        : SpanContext.create(t.traceId, parentId, TraceFlags.getSampled(), TraceState.getDefault());
    if (status.getStatusCode() == StatusCode.ERROR) t.error = true;
    t.evaluations += (int) events.stream().filter(e -> e.getName().equals("gen_ai.evaluation.result")).count();
    return TestSpanData.builder()
        .setSpanContext(ctx)
        .setParentSpanContext(parent)
        .setResource(res)
        .setInstrumentationScopeInfo(scope)
        .setName(name)
        .setKind(kind)
        .setStartEpochNanos(start)
        .setEndEpochNanos(end)
        .setAttributes(attrs)
        .setEvents(events)
        .setStatus(status)
        .setHasEnded(true)
        .setTotalRecordedEvents(events.size())
        .setTotalRecordedLinks(0)
        .setTotalAttributeCount(attrs.size())
        .build();
  }

  // An LLM call: model, token counts, prompt and completion, sometimes an evaluation event, an
  // error or a retry count. Returns its end time.
  private static long llmSpan(Gen g, Trace t, Resource res, String parentId, String name, long start,
      String prompt, boolean slow, int retry, boolean fail) {
    String spanId = g.hex(8);
    long dur = slow ? g.between(8_000 * MS, 15_000 * MS) : g.between(300 * MS, 3_500 * MS);
    long end = start + dur + g.rng.nextInt(1000);
    String model = g.pick(MODELS);
    AttributesBuilder a = Attributes.builder()
        .put("openinference.span.kind", "LLM")
        .put("gen_ai.operation.name", "chat")
        .put("gen_ai.system", model.startsWith("claude") ? "anthropic" : "openai")
        .put("gen_ai.request.model", model)
        .put("gen_ai.response.model", model + "-2025-06-01")
        .put("gen_ai.usage.input_tokens", (long) (200 + g.rng.nextInt(3800)))
        .put("gen_ai.usage.output_tokens", fail ? 0L : (long) (20 + g.rng.nextInt(900)))
        .put("gen_ai.request.temperature", Math.round(g.rng.nextDouble() * 10) / 10.0)
        .put("gen_ai.request.stream", g.chance(50))
        .put(AttributeKey.stringArrayKey("gen_ai.response.finish_reasons"),
            List.of(fail ? "error" : g.chance(90) ? "stop" : "length"))
        .put("input.value", prompt)
        .put("session.id", t.sessionId)
        .put("user.id", t.userId);
    if (!fail) a.put("output.value", "Answer " + g.hex(3) + ": " + (g.chance(50) ? "Your order ships Tuesday." : "I could not find that in the documents."));
    if (retry > 0) a.put("retry.count", (long) retry);
    List<EventData> events = new ArrayList<>();
    if (!fail && g.chance(35)) {
      String[] ev = g.pick(EVALS);
      double score = Math.round(g.rng.nextDouble() * 1000) / 1000.0;
      events.add(EventData.create(end + g.between(MS, 500 * MS), "gen_ai.evaluation.result",
          Attributes.builder()
              .put("gen_ai.evaluation.name", ev[0])
              .put("gen_ai.evaluation.score.value", score)
              .put("gen_ai.evaluation.score.label", score >= 0.5 ? ev[1] : ev[2])
              .put("gen_ai.evaluation.explanation", ev[0] + " judged " + score + " by the grader model")
              .put("gen_ai.response.id", "chatcmpl-" + g.hex(6))
              .build()));
    }
    StatusData status = fail
        ? StatusData.create(StatusCode.ERROR, g.chance(50) ? "429 Too Many Requests: rate limit reached" : "upstream timeout after 30s")
        : g.chance(50) ? StatusData.ok() : StatusData.unset();
    t.spans.add(span(t, res, g.scope("openinference.instrumentation.openai"), spanId, parentId, name,
        SpanKind.CLIENT, start, end, a.build(), events, status));
    if (!fail) t.llmSpanIds.add(spanId);
    return end;
  }

  // One or more LLM calls: failed attempts, then the call that worked, with retry.count = the
  // number of failed attempts before it.
  private static long llmWithRetries(Gen g, Trace t, Resource res, String parentId, String name,
      long start, String prompt) {
    boolean slow = g.chance(8);
    int failures = g.chance(12) ? 1 + g.rng.nextInt(2) : 0;
    long at = start;
    for (int i = 0; i < failures; i++) {
      at = llmSpan(g, t, res, parentId, name, at, prompt, false, 0, true) + g.between(50 * MS, 400 * MS);
    }
    return llmSpan(g, t, res, parentId, name, at, prompt, slow, failures, false);
  }

  private static long toolSpan(Gen g, Trace t, Resource res, String parentId, String tool, long start) {
    long end = start + g.between(20 * MS, 900 * MS);
    boolean fail = g.chance(10);
    Attributes a = Attributes.builder()
        .put("openinference.span.kind", "TOOL")
        .put("tool.name", tool)
        .put("tool.parameters", "{\"order_id\":\"" + g.hex(4) + "\"}")
        .put(AttributeKey.longArrayKey("tool.result.ids"), List.of((long) g.rng.nextInt(10000), (long) g.rng.nextInt(10000)))
        .put("tool.cached", g.chance(30))
        .build();
    t.spans.add(span(t, res, g.scope("app.tools"), g.hex(8), parentId, "tool." + tool,
        SpanKind.INTERNAL, start, end, a, List.of(),
        fail ? StatusData.create(StatusCode.ERROR, tool + ": connection reset by peer") : StatusData.unset()));
    return end;
  }

  private static long retrieverSpan(Gen g, Trace t, Resource res, String parentId, long start) {
    long end = start + g.between(30 * MS, 600 * MS);
    int k = 3 + g.rng.nextInt(5);
    List<Double> scores = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < k; i++) {
      scores.add(Math.round((0.95 - i * 0.07 - g.rng.nextDouble() * 0.05) * 1000) / 1000.0);
      ids.add("doc-" + g.hex(3));
    }
    Attributes a = Attributes.builder()
        .put("openinference.span.kind", "RETRIEVER")
        .put("retrieval.top_k", (long) k)
        .put(AttributeKey.doubleArrayKey("retrieval.scores"), scores)
        .put(AttributeKey.stringArrayKey("retrieval.document_ids"), ids)
        .put("db.system", "pgvector")
        .put("input.value", "embedding query")
        .build();
    t.spans.add(span(t, res, g.scope("openinference.instrumentation.llama_index"), g.hex(8), parentId,
        "retrieve", SpanKind.CLIENT, start, end, a, List.of(), StatusData.unset()));
    return end;
  }

  // `t0`: the root span's start. Traces start a few seconds apart, in order, as an application's
  // exporter would send them.
  private static Trace trace(Gen g, long t0) {
    Trace t = new Trace(g.hex(16));
    t.sessionId = "sess-" + g.hex(4);
    t.userId = "user-" + g.rng.nextInt(500);
    String env = g.chance(80) ? "production" : "staging";
    String rootId = g.hex(8);
    String question = g.pick(new String[] {
      "Where is my order?", "How do I reset my password?", "Summarize the refund policy.",
      "Which plan includes SSO?", "Why was I charged twice?"});
    int app = g.rng.nextInt(3);
    Resource res;
    String rootKind;
    long at = t0 + g.between(MS, 20 * MS);
    switch (app) {
      case 0 -> {  // chat with tools; the tools run in a service of their own
        t.rootName = "chat";
        rootKind = "CHAIN";
        res = g.resource("support-bot", env);
        at = llmWithRetries(g, t, res, rootId, "llm.chat", at, question);
        if (g.chance(60)) {
          at = toolSpan(g, t, g.resource("order-tools", env), rootId, g.chance(50) ? "lookup_order" : "refund_status", at + MS);
          at = llmWithRetries(g, t, res, rootId, "llm.chat", at + MS, question + " (with tool result)");
        }
      }
      case 1 -> {  // RAG
        t.rootName = "rag.query";
        rootKind = "CHAIN";
        res = g.resource("rag-api", env);
        at = retrieverSpan(g, t, res, rootId, at);
        at = llmWithRetries(g, t, res, rootId, "llm.generate", at + MS, question);
      }
      default -> {  // agent: plan/act loops
        t.rootName = "agent.run";
        rootKind = "AGENT";
        res = g.resource("agent-worker", env);
        int steps = 1 + g.rng.nextInt(3);
        for (int i = 0; i < steps; i++) {
          at = llmWithRetries(g, t, res, rootId, "llm.plan", at, question + " step " + i);
          at = toolSpan(g, t, res, rootId, g.pick(new String[] {"search_kb", "lookup_order", "create_ticket"}), at + MS);
        }
        at = llmWithRetries(g, t, res, rootId, "llm.answer", at + MS, question);
      }
    }
    long end = at + g.between(MS, 30 * MS);
    Attributes root = Attributes.builder()
        .put("openinference.span.kind", rootKind)
        .put("session.id", t.sessionId)
        .put("user.id", t.userId)
        .put("input.value", question)
        .put("output.value", "final answer for " + t.rootName)
        .put("http.route", "/v1/" + t.rootName.replace('.', '/'))
        .put("cache.hit", g.chance(20))
        .put("app.latency_budget_ms", 5000.0)
        .put(AttributeKey.stringArrayKey("app.tags"), List.of("tier-" + (1 + g.rng.nextInt(3)), env))
        .build();
    t.spans.add(span(t, res, g.scope(res.getAttribute(AttributeKey.stringKey("service.name")) + ".app"),
        rootId, null, t.rootName, SpanKind.SERVER, t0, end, root, List.of(),
        g.chance(5) ? StatusData.create(StatusCode.ERROR, "request failed") : StatusData.unset()));
    // As an SDK's batch processor exports them: in the order the spans ended (root last).
    t.spans.sort(Comparator.comparingLong(SpanData::getEndEpochNanos));
    return t;
  }

  private static void corpus(String[] args) throws IOException {
    String outDir = null;
    long seed = 1;
    int traces = 40;
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--seed" -> seed = Long.parseLong(need(args, ++i));
        case "--traces" -> traces = Integer.parseInt(need(args, ++i));
        default -> {
          if (args[i].startsWith("-") || outDir != null) usage("unexpected argument " + args[i]);
          outDir = args[i];
        }
      }
    }
    if (outDir == null) usage("corpus needs OUTDIR");
    if (traces < 1) usage("--traces must be at least 1");
    Gen g = new Gen(seed);
    List<Trace> all = new ArrayList<>();
    long t0 = BASE_NS + (long) g.rng.nextInt(300 * 24 * 3600) * 1_000_000_000L;
    for (int i = 0; i < traces; i++) {
      t0 += g.between(200 * MS, 3_000 * MS);
      all.add(trace(g, t0));
    }

    // Requests of 1-4 whole traces; a trace that is split leaves the rest of its spans to the
    // next request (which then mixes it with new traces).
    List<List<SpanData>> requests = new ArrayList<>();
    List<SpanData> carry = new ArrayList<>();
    Trace carried = null;
    int next = 0;
    while (next < all.size()) {
      List<SpanData> req = new ArrayList<>(carry);
      if (carried != null) carried.requests.add(requests.size());
      carry = new ArrayList<>();
      carried = null;
      int k = 1 + g.rng.nextInt(4);
      for (int j = 0; j < k && next < all.size(); j++) {
        Trace t = all.get(next++);
        t.requests.add(requests.size());
        int n = t.spans.size();
        if (carried == null && n >= 3 && g.chance(15)) {
          int cut = 1 + g.rng.nextInt(n - 1);
          req.addAll(t.spans.subList(0, cut));
          carry.addAll(t.spans.subList(cut, n));
          carried = t;
        } else {
          req.addAll(t.spans);
        }
      }
      requests.add(req);
    }
    if (!carry.isEmpty()) {
      carried.requests.add(requests.size());
      requests.add(carry);
    }

    Path out = Path.of(outDir);
    Path bins = out.resolve("otlp-proto");
    Files.createDirectories(bins);
    try (OutputStream json = Files.newOutputStream(out.resolve("otlp-json.jsonl"));
        BufferedWriter proto = Files.newBufferedWriter(out.resolve("otlp-proto.jsonl"), StandardCharsets.UTF_8)) {
      for (int i = 0; i < requests.size(); i++) {
        List<SpanData> spans = inFirstSeenOrder(requests.get(i));
        TraceRequestMarshaler m = TraceRequestMarshaler.create(spans);
        ByteArrayOutputStream jb = new ByteArrayOutputStream();
        m.writeJsonTo(jb);
        byte[] jsonBytes = jb.toByteArray();
        for (byte b : jsonBytes) {
          if (b == '\n' || b == '\r') throw new IllegalStateException("OTLP/JSON request " + i + " spans lines");
        }
        json.write(jsonBytes);
        json.write('\n');
        ByteArrayOutputStream pb = new ByteArrayOutputStream();
        TraceRequestMarshaler.create(spans).writeBinaryTo(pb);
        byte[] protoBytes = pb.toByteArray();
        Files.write(bins.resolve(String.format("%05d.bin", i)), protoBytes);
        proto.write("{\"topic\":\"llm.spans\",\"payload_base64\":\""
            + Base64.getEncoder().encodeToString(protoBytes) + "\"}\n");
      }
    }

    int feedback = 0;
    try (PrintWriter fb = new PrintWriter(Files.newBufferedWriter(out.resolve("feedback.jsonl"), StandardCharsets.UTF_8));
        PrintWriter ids = new PrintWriter(Files.newBufferedWriter(out.resolve("traces.txt"), StandardCharsets.UTF_8));
        PrintWriter exp = new PrintWriter(Files.newBufferedWriter(out.resolve("expected.jsonl"), StandardCharsets.UTF_8))) {
      for (Trace t : all) {
        ids.println(t.traceId);
        exp.println(json(expected(t)));
        if (g.rng.nextInt(3) != 0) continue;
        int n = 1 + (g.chance(30) ? 1 : 0);
        for (int i = 0; i < n; i++) {
          fb.println(json(feedbackFor(g, t)));
          feedback++;
        }
      }
    }
    System.out.printf("%d traces, %d OTLP requests, %d feedback events in %s%n", all.size(), requests.size(), feedback, out);
  }

  // A span with another (equal) resource and scope instance.
  private static final class Regrouped extends DelegatingSpanData {
    Resource resource;
    InstrumentationScopeInfo scope;

    Regrouped(SpanData span) {
      super(span);
      resource = span.getResource();
      scope = span.getInstrumentationScopeInfo();
    }

    @Override
    public Resource getResource() {
      return resource;
    }

    @Override
    public InstrumentationScopeInfo getInstrumentationScopeInfo() {
      return scope;
    }
  }

  private static <K> boolean sameOrder(Iterable<K> got, List<K> want) {
    List<K> g = new ArrayList<>();
    got.forEach(g::add);
    if (g.size() != want.size()) return false;
    for (int i = 0; i < g.size(); i++) {
      if (g.get(i) != want.get(i)) return false;
    }
    return true;
  }

  // TraceRequestMarshaler groups spans by resource and by scope in IdentityHashMaps, so the order
  // of the groups in its output follows identity hash codes, which change from run to run. For the
  // corpus to be a function of the seed, each group gets fresh, equal, Resource and scope
  // instances until the SDK's own grouping (MarshalerUtil.groupByResourceAndScope, what the
  // marshaler calls) lists the groups in the order they first appear in the request. The bytes
  // are still the SDK's: only which of several equal objects it is handed changes.
  private static List<SpanData> inFirstSeenOrder(List<SpanData> spans) {
    List<Regrouped> out = new ArrayList<>();
    Map<Resource, List<Regrouped>> byResource = new LinkedHashMap<>();
    for (SpanData s : spans) {
      Regrouped r = new Regrouped(s);
      out.add(r);
      byResource.computeIfAbsent(s.getResource(), k -> new ArrayList<>()).add(r);
    }
    for (List<Regrouped> group : byResource.values()) {
      Map<InstrumentationScopeInfo, List<Regrouped>> byScope = new LinkedHashMap<>();
      for (Regrouped r : group) byScope.computeIfAbsent(r.scope, k -> new ArrayList<>()).add(r);
      if (byScope.size() < 2) continue;
      for (int tries = 0; ; tries++) {
        if (tries > 100_000) throw new IllegalStateException("cannot order the scope groups");
        List<InstrumentationScopeInfo> want = new ArrayList<>();
        for (Map.Entry<InstrumentationScopeInfo, List<Regrouped>> e : byScope.entrySet()) {
          InstrumentationScopeInfo v = e.getKey();
          InstrumentationScopeInfoBuilder b = InstrumentationScopeInfo.builder(v.getName()).setAttributes(v.getAttributes());
          if (v.getVersion() != null) b.setVersion(v.getVersion());
          if (v.getSchemaUrl() != null) b.setSchemaUrl(v.getSchemaUrl());
          InstrumentationScopeInfo copy = b.build();
          want.add(copy);
          for (Regrouped r : e.getValue()) r.scope = copy;
        }
        var got = MarshalerUtil.groupByResourceAndScope(group, Regrouped::getResource, Regrouped::getInstrumentationScopeInfo, r -> r);
        if (sameOrder(got.values().iterator().next().keySet(), want)) break;
      }
    }
    if (byResource.size() >= 2) {
      for (int tries = 0; ; tries++) {
        if (tries > 100_000) throw new IllegalStateException("cannot order the resource groups");
        List<Resource> want = new ArrayList<>();
        for (Map.Entry<Resource, List<Regrouped>> e : byResource.entrySet()) {
          Resource copy = e.getKey().getSchemaUrl() == null
              ? Resource.create(e.getKey().getAttributes())
              : Resource.create(e.getKey().getAttributes(), e.getKey().getSchemaUrl());
          want.add(copy);
          for (Regrouped r : e.getValue()) r.resource = copy;
        }
        var got = MarshalerUtil.groupByResourceAndScope(out, Regrouped::getResource, Regrouped::getInstrumentationScopeInfo, r -> r);
        if (sameOrder(got.keySet(), want)) break;
      }
    }
    return new ArrayList<>(out);
  }

  // What a consumer of the corpus should see for a trace (DESIGN §1.1 canonical fields): the
  // model of the root span, else of the earliest-starting span that has one; sums over spans.
  private static Map<String, Object> expected(Trace t) {
    Map<String, Object> m = new LinkedHashMap<>();
    List<SpanData> byStart = new ArrayList<>(t.spans);
    byStart.sort(Comparator.comparingLong(SpanData::getStartEpochNanos));
    SpanData root = t.spans.stream().filter(s -> !s.getParentSpanContext().isValid()).findFirst().orElseThrow();
    AttributeKey<String> modelKey = AttributeKey.stringKey("gen_ai.request.model");
    String model = root.getAttributes().get(modelKey);
    for (SpanData s : byStart) {
      if (model == null) model = s.getAttributes().get(modelKey);
    }
    long in = 0, outTok = 0, retries = 0, errors = 0;
    for (SpanData s : t.spans) {
      Long v = s.getAttributes().get(AttributeKey.longKey("gen_ai.usage.input_tokens"));
      in += v == null ? 0 : v;
      v = s.getAttributes().get(AttributeKey.longKey("gen_ai.usage.output_tokens"));
      outTok += v == null ? 0 : v;
      v = s.getAttributes().get(AttributeKey.longKey("retry.count"));
      retries += v == null ? 0 : v;
      if (s.getStatus().getStatusCode() == StatusCode.ERROR) errors++;
    }
    m.put("trace_id", t.traceId);
    m.put("name", t.rootName);
    m.put("span_count", t.spans.size());
    m.put("error", errors > 0);
    m.put("error_count", errors);
    m.put("duration_ms", (t.endNs() - t.startNs()) / 1e6);
    m.put("model", model);
    m.put("input_tokens", in);
    m.put("output_tokens", outTok);
    m.put("retry_count", retries);
    m.put("session_id", t.sessionId);
    m.put("user_id", t.userId);
    m.put("service", root.getResource().getAttribute(AttributeKey.stringKey("service.name")));
    m.put("evaluations", t.evaluations);
    m.put("requests", new ArrayList<>(t.requests));
    return m;
  }

  private static Map<String, Object> feedbackFor(Gen g, Trace t) {
    long ts = t.endNs() + g.between(2_000 * MS, 600_000 * MS);
    String when = RFC3339_MS.format(Instant.ofEpochSecond(0, ts));
    boolean down = g.chance(t.error ? 80 : 40);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("trace_id", t.traceId);
    switch (g.rng.nextInt(4)) {
      case 0 -> {  // native thumbs
        m.put("name", "thumbs");
        m.put("label", down ? "down" : "up");
        m.put("score", down ? 0 : 1);
        m.put("source", "end_user");
        m.put("timestamp", when);
      }
      case 1 -> {  // thumbs shorthand, with a timestamp half of the time
        m.put("thumbs", down ? "down" : "up");
        if (g.chance(50)) m.put("timestamp", when);
      }
      case 2 -> {  // an LLM judge's score on one LLM span
        String[] ev = g.pick(EVALS);
        double score = Math.round(g.rng.nextDouble() * 1000) / 1000.0;
        if (!t.llmSpanIds.isEmpty()) m.put("span_id", t.llmSpanIds.get(g.rng.nextInt(t.llmSpanIds.size())));
        m.put("name", ev[0]);
        m.put("score", score);
        m.put("label", score >= 0.5 ? ev[1] : ev[2]);
        m.put("explanation", "judge: " + ev[0] + " " + score);
        m.put("source", "llm_judge");
        m.put("timestamp", when);
      }
      default -> {  // a reviewer's label
        m.put("name", "correctness");
        m.put("label", g.pick(new String[] {"correct", "partially_correct", "wrong"}));
        m.put("score", null);
        m.put("explanation", "reviewed in the support queue");
        m.put("source", "human");
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("queue", "support-review");
        meta.put("reviewer", "r-" + g.rng.nextInt(40));
        m.put("metadata", meta);
        m.put("timestamp", when);
      }
    }
    return m;
  }

  // A minimal JSON writer for the maps above (strings, numbers, booleans, null, maps, lists).
  private static String json(Object v) {
    StringBuilder sb = new StringBuilder();
    writeJson(sb, v);
    return sb.toString();
  }

  private static void writeJson(StringBuilder sb, Object v) {
    if (v == null) {
      sb.append("null");
    } else if (v instanceof String s) {
      sb.append('"');
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        switch (c) {
          case '"' -> sb.append("\\\"");
          case '\\' -> sb.append("\\\\");
          case '\n' -> sb.append("\\n");
          case '\r' -> sb.append("\\r");
          case '\t' -> sb.append("\\t");
          default -> {
            if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
          }
        }
      }
      sb.append('"');
    } else if (v instanceof Map<?, ?> map) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : map.entrySet()) {
        if (!first) sb.append(',');
        first = false;
        writeJson(sb, e.getKey().toString());
        sb.append(':');
        writeJson(sb, e.getValue());
      }
      sb.append('}');
    } else if (v instanceof List<?> list) {
      sb.append('[');
      for (int i = 0; i < list.size(); i++) {
        if (i > 0) sb.append(',');
        writeJson(sb, list.get(i));
      }
      sb.append(']');
    } else {
      sb.append(v);  // Boolean, Integer, Long, Double (finite here)
    }
  }

  // ---------------------------------------------------------------------------------------------
  // produce

  private static final JsonFactory JSON = new JsonFactory();

  // The top-level string (and null) members of a JSON object line, or null if the line is not
  // one JSON object.
  private static Map<String, String> topLevelStrings(byte[] line) {
    try (JsonParser p = JSON.createParser(line)) {
      if (p.nextToken() != JsonToken.START_OBJECT) return null;
      Map<String, String> out = new HashMap<>();
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        JsonToken v = p.nextToken();
        if (v == JsonToken.VALUE_STRING) {
          out.put(name, p.getText());
        } else if (v == JsonToken.VALUE_NULL) {
          out.put(name, null);
        } else {
          p.skipChildren();
        }
      }
      if (p.currentToken() != JsonToken.END_OBJECT || p.nextToken() != null) return null;
      return out;
    } catch (IOException e) {
      return null;
    }
  }

  private static void produce(String[] args) throws Exception {
    String bootstrap = null, topic = null, file = null, report = null;
    boolean keyed = true;
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--bootstrap", "-b" -> bootstrap = need(args, ++i);
        case "--topic", "-t" -> topic = need(args, ++i);
        case "--report" -> report = need(args, ++i);
        case "--key-from" -> {
          String k = need(args, ++i);
          if (!k.equals("trace_id") && !k.equals("none")) usage("--key-from is trace_id or none");
          keyed = k.equals("trace_id");
        }
        default -> {
          if (args[i].startsWith("-") || file != null) usage("unexpected argument " + args[i]);
          file = args[i];
        }
      }
    }
    if (bootstrap == null || topic == null || file == null) usage("produce needs --bootstrap, --topic and FILE");

    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.CLIENT_ID_CONFIG, "triaged-otlp-witness");
    props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    props.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "16777216");
    // No partitioner.class: the client's built-in partitioning (murmur2 of the key, sticky
    // batches for records without one) is what this witness stands for.

    AtomicInteger sent = new AtomicInteger();
    AtomicInteger keyedCount = new AtomicInteger();
    AtomicReference<Exception> failure = new AtomicReference<>();
    List<String> reportLines = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer =
            new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
        BufferedReader in = Files.newBufferedReader(Path.of(file), StandardCharsets.UTF_8)) {
      String text;
      int lineNo = 0;
      while ((text = in.readLine()) != null && failure.get() == null) {
        lineNo++;
        if (text.endsWith("\r")) text = text.substring(0, text.length() - 1);
        if (text.isBlank()) continue;
        byte[] line = text.getBytes(StandardCharsets.UTF_8);
        Map<String, String> fields = topLevelStrings(line);
        byte[] value = line;
        String key = null;
        if (fields != null && fields.containsKey("payload_base64")) {
          String b64 = fields.get("payload_base64");
          try {
            value = b64 == null ? null : Base64.getDecoder().decode(b64);
          } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ":" + lineNo + ": payload_base64 is not base64", e);
          }
          key = fields.get("key");
        } else if (fields != null && fields.containsKey("payload")) {
          String payload = fields.get("payload");
          value = payload == null ? null : payload.getBytes(StandardCharsets.UTF_8);
          key = fields.get("key");
          if (key == null && payload != null) {
            Map<String, String> inner = topLevelStrings(value);
            if (inner != null) key = inner.get("trace_id");
          }
        } else if (fields != null) {
          key = fields.get("trace_id");
        }
        if (!keyed) key = null;
        if (key != null) keyedCount.incrementAndGet();
        final int n = lineNo;
        final String k = key;
        producer.send(new ProducerRecord<>(topic, key == null ? null : key.getBytes(StandardCharsets.UTF_8), value),
            (RecordMetadata md, Exception e) -> {
              if (e != null) {
                failure.compareAndSet(null, e);
                return;
              }
              sent.incrementAndGet();
              synchronized (reportLines) {
                reportLines.add(n + "\t" + (k == null ? "" : k) + "\t" + md.partition() + "\t" + md.offset());
              }
            });
      }
      producer.flush();
    }
    if (report != null) {
      reportLines.sort(Comparator.comparingInt(s -> Integer.parseInt(s.substring(0, s.indexOf('\t')))));
      Files.write(Path.of(report), reportLines, StandardCharsets.UTF_8);
    }
    if (failure.get() != null) {
      System.err.println("witness: produce to " + topic + " failed after " + sent.get() + " messages: " + failure.get());
      System.exit(1);
    }
    System.out.println("produced=" + sent.get() + " keyed=" + keyedCount.get() + " topic=" + topic);
  }

  private static String need(String[] args, int i) {
    if (i >= args.length) usage(args[i - 1] + " needs a value");
    return args[i];
  }
}
