package dev.triaged.peer.core;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.FileReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * The peers' job on a kcat JSONL corpus, without a broker or a framework, the way `triaged
 * replay` reads it: lines in order, each at its event time (the envelope's `ts`), every open
 * trace closed at end of input. Prints `destination TAB rule TAB trace_id` per routed item:
 * a check of router-core against `triaged replay` on the same file.
 *
 * <p>Usage: FileReplay CORPUS.jsonl [SPANS_TOPIC]
 */
public final class FileReplay {
  private FileReplay() {}

  public static void main(String[] args) throws Exception {
    String spansTopic = args.length > 1 ? args[1] : "llm.spans";
    Map<String, TraceState> traces = new HashMap<>();
    PriorityQueue<Object[]> timers = new PriorityQueue<>((a, b) -> Long.compare((Long) a[0], (Long) b[0]));
    List<String> order = new ArrayList<>();
    StringBuilder out = new StringBuilder();
    long now = Long.MIN_VALUE;
    try (BufferedReader in = new BufferedReader(new FileReader(args[0], StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        if (line.isBlank()) continue;
        JsonNode env = Decoder.JSON.readTree(line);
        now = Math.max(now, env.path("ts").asLong());
        while (!timers.isEmpty() && (Long) timers.peek()[0] <= now) {
          Object[] tm = timers.poll();
          TraceState t = traces.get((String) tm[1]);
          if (t != null && !t.closed && t.deadline == (Long) tm[0]) {
            Engine.close(t, t.deadline);
            emit(out, (String) tm[1], Rules.evaluate(t, (String) tm[1]));
          }
        }
        String key = env.path("key").isTextual() ? env.path("key").asText() : null;
        List<Event> events = Decoder.decode(env.path("payload").asText().getBytes(StandardCharsets.UTF_8), key,
            env.path("topic").asText().equals(spansTopic));
        if (events == null) continue;
        for (Event e : events) {
          TraceState t = traces.get(e.traceId);
          if (t == null) {
            t = Engine.open(now);
            traces.put(e.traceId, t);
            order.add(e.traceId);
          }
          int what = Engine.add(t, e, now);
          if (what == Engine.NOTHING) timers.add(new Object[] {t.deadline, e.traceId});
          else emit(out, e.traceId, Rules.evaluate(t, e.traceId));
        }
      }
    }
    for (String id : order) {
      TraceState t = traces.get(id);
      if (!t.closed) {
        Engine.close(t, now);
        emit(out, id, Rules.evaluate(t, id));
      }
    }
    System.out.print(out);
  }

  static void emit(StringBuilder out, String traceId, int pairs) {
    for (int p = 0; pairs != 0; ++p, pairs >>>= 1) {
      if ((pairs & 1) == 0) continue;
      out.append(Rules.DESTINATIONS[Rules.PAIR_DEST[p]]).append('\t').append(Rules.RULES[Rules.PAIR_RULE[p]])
          .append('\t').append(traceId).append('\n');
    }
  }
}
