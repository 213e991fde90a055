package dev.triaged.peer.core;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The routed item of one (trace, rule, destination), in the spirit of DESIGN §4: ids, rule,
 * destination and kind, sample rate, trigger, the trace summary and the trace's events (each
 * message as received: spans, then feedback).
 */
public final class Items {
  private Items() {}

  static void str(ByteArrayOutputStream b, String s) {
    b.write('"');
    for (int i = 0; i < s.length(); ++i) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        b.write('\\');
        b.write(c);
      } else if (c < 0x20) {
        byte[] esc = String.format("\\u%04x", (int) c).getBytes(StandardCharsets.US_ASCII);
        b.write(esc, 0, esc.length);
      } else if (c < 0x80) {
        b.write(c);
      } else {
        byte[] u = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
        b.write(u, 0, u.length);
      }
    }
    b.write('"');
  }

  static void raw(ByteArrayOutputStream b, String s) {
    byte[] a = s.getBytes(StandardCharsets.US_ASCII);
    b.write(a, 0, a.length);
  }

  public static byte[] item(String traceId, TraceState t, int pair, boolean late, long now,
      List<byte[]> spans, List<byte[]> feedback) {
    int rule = Rules.PAIR_RULE[pair], dest = Rules.PAIR_DEST[pair];
    int size = 512;
    for (byte[] s : spans) size += s.length + 1;
    for (byte[] f : feedback) size += f.length + 1;
    ByteArrayOutputStream b = new ByteArrayOutputStream(size);
    raw(b, "{\"schema\":\"triaged.routed_item/v1\",\"trace_id\":");
    str(b, traceId);
    raw(b, ",\"destination\":");
    str(b, Rules.DESTINATIONS[dest]);
    raw(b, ",\"kind\":\"" + Rules.KINDS[dest] + "\",\"rule\":");
    str(b, Rules.RULES[rule]);
    raw(b, ",\"sample_rate\":" + Rules.SAMPLE[rule] + ",\"trigger\":\""
        + (late ? "late_feedback" : "close") + "\",\"routed_at_ms\":" + now);
    raw(b, ",\"trace\":{\"duration_ms\":" + (t.hasDuration() ? t.durationMs() : 0)
        + ",\"status\":\"" + (t.errorCount > 0 ? "error" : "ok") + "\",\"span_count\":" + t.spanCount
        + ",\"error_count\":" + t.errorCount + ",\"retry_count\":" + t.retrySum + ",\"session_id\":");
    String session = t.sessionId();
    if (session == null) raw(b, "null");
    else str(b, session);
    raw(b, ",\"spans\":[");
    for (int i = 0; i < spans.size(); ++i) {
      if (i > 0) b.write(',');
      b.write(spans.get(i), 0, spans.get(i).length);
    }
    raw(b, "]},\"feedback\":[");
    for (int i = 0; i < feedback.size(); ++i) {
      if (i > 0) b.write(',');
      b.write(feedback.get(i), 0, feedback.get(i).length);
    }
    raw(b, "]}");
    return b.toByteArray();
  }
}
