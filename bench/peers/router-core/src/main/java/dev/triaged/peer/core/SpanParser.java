package dev.triaged.peer.core;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The spans topic's messages (native spans and OTLP/JSON requests) decoded in one streaming pass
 * (Jackson's JsonParser, no tree), into the same facts as {@link Decoder}'s tree walk.
 */
final class SpanParser {
  static final JsonFactory FACTORY = new JsonFactory();

  private SpanParser() {}

  static Map<String, Decoder.Builder> parse(byte[] payload) throws IOException {
    try (JsonParser p = FACTORY.createParser(payload)) {
      if (p.nextToken() != JsonToken.START_OBJECT) throw new Decoder.Invalid();
      Map<String, Decoder.Builder> byTrace = new LinkedHashMap<>();
      boolean otlp = false;
      NativeSpan span = new NativeSpan();
      for (JsonToken t = p.nextToken(); t == JsonToken.FIELD_NAME; t = p.nextToken()) {
        String name = p.currentName();
        JsonToken v = p.nextToken();
        if (name.equals("resourceSpans")) {
          otlp = true;
          if (v != JsonToken.START_ARRAY) throw new Decoder.Invalid();
          resourceSpans(p, byTrace);
        } else {
          span.field(name, v, p);
        }
      }
      if (otlp) {
        if (byTrace.isEmpty()) throw new Decoder.Invalid();
        return byTrace;
      }
      span.finish(byTrace);
      return byTrace;
    }
  }

  static String id(JsonToken v, JsonParser p, boolean required) throws IOException {
    if (v == JsonToken.VALUE_NULL) {
      if (required) throw new Decoder.Invalid();
      return "";
    }
    if (v != JsonToken.VALUE_STRING) throw new Decoder.Invalid();
    String s = p.getText();
    return s.toLowerCase(Locale.ROOT);
  }

  static long nanos(JsonToken v, JsonParser p, long missing) throws IOException {
    if (v == JsonToken.VALUE_NULL) return missing;
    if (v == JsonToken.VALUE_NUMBER_INT) return p.getLongValue();
    if (v == JsonToken.VALUE_STRING) {
      try {
        return Long.parseLong(p.getText());
      } catch (NumberFormatException e) {
        throw new Decoder.Invalid();
      }
    }
    throw new Decoder.Invalid();
  }

  static boolean statusIsError(JsonToken v, JsonParser p) throws IOException {
    if (v == JsonToken.VALUE_NUMBER_INT) {
      int c = p.getIntValue();
      if (c < 0 || c > 2) throw new Decoder.Invalid();
      return c == 2;
    }
    if (v != JsonToken.VALUE_STRING) throw new Decoder.Invalid();
    String s = p.getText().toLowerCase(Locale.ROOT);
    if (s.startsWith("status_code_")) s = s.substring(12);
    switch (s) {
      case "error":
        return true;
      case "ok":
      case "unset":
        return false;
      default:
        throw new Decoder.Invalid();
    }
  }

  /** A scalar attribute value as Decoder's maps hold it (String, Double, Boolean), else null. */
  static Object scalar(JsonToken v, JsonParser p) throws IOException {
    switch (v) {
      case VALUE_STRING:
        return p.getText();
      case VALUE_NUMBER_INT:
      case VALUE_NUMBER_FLOAT:
        return p.getDoubleValue();
      case VALUE_TRUE:
        return Boolean.TRUE;
      case VALUE_FALSE:
        return Boolean.FALSE;
      case START_OBJECT:
      case START_ARRAY:
        p.skipChildren();
        return null;
      default:
        return null;
    }
  }

  static final class NativeSpan {
    String traceId, spanId, parent = "", kind = "";
    boolean haveTrace, haveSpan, startNanos, endNanos, error;
    long start = Long.MAX_VALUE, end = Long.MIN_VALUE;
    String startText, endText;
    final Map<String, Object> attrs = new HashMap<>();

    void field(String name, JsonToken v, JsonParser p) throws IOException {
      switch (name) {
        case "trace_id" -> {
          traceId = id(v, p, true);
          haveTrace = true;
        }
        case "span_id" -> {
          spanId = id(v, p, true);
          haveSpan = true;
        }
        case "parent_span_id" -> parent = id(v, p, false);
        case "start_time_unix_nano" -> {
          start = nanos(v, p, Long.MAX_VALUE);
          startNanos = true;
        }
        case "end_time_unix_nano" -> {
          end = nanos(v, p, Long.MIN_VALUE);
          endNanos = true;
        }
        case "start_time" -> startText = v == JsonToken.VALUE_STRING ? p.getText() : null;
        case "end_time" -> endText = v == JsonToken.VALUE_STRING ? p.getText() : null;
        case "status" -> {
          if (v == JsonToken.START_OBJECT) {
            for (JsonToken t = p.nextToken(); t == JsonToken.FIELD_NAME; t = p.nextToken()) {
              String k = p.currentName();
              JsonToken sv = p.nextToken();
              if (k.equals("code")) error = statusIsError(sv, p);
              else p.skipChildren();
            }
          } else if (v != JsonToken.VALUE_NULL) {
            error = statusIsError(v, p);
          }
        }
        case "attributes" -> {
          if (v == JsonToken.START_OBJECT) flatten(p, "");
          else p.skipChildren();
        }
        case "kind" -> {
          if (v == JsonToken.VALUE_STRING) kind = p.getText();
          else p.skipChildren();
        }
        default -> p.skipChildren();
      }
    }

    void flatten(JsonParser p, String prefix) throws IOException {
      for (JsonToken t = p.nextToken(); t == JsonToken.FIELD_NAME; t = p.nextToken()) {
        String k = prefix + p.currentName();
        JsonToken v = p.nextToken();
        if (v == JsonToken.START_OBJECT) {
          flatten(p, k + ".");
        } else {
          Object value = scalar(v, p);
          if (value != null) attrs.putIfAbsent(k, value);
        }
      }
    }

    void finish(Map<String, Decoder.Builder> byTrace) {
      if (!haveTrace || !haveSpan || traceId.isEmpty() || spanId.isEmpty()) throw new Decoder.Invalid();
      if (!startNanos && startText != null) start = Decoder.rfc3339Text(startText);
      if (!endNanos && endText != null) end = Decoder.rfc3339Text(endText);
      if (start != Long.MAX_VALUE && end != Long.MIN_VALUE && end < start) throw new Decoder.Invalid();
      Decoder.addSpan(byTrace, traceId, spanId, parent, start, end, error, attrs, kind);
    }
  }

  static void resourceSpans(JsonParser p, Map<String, Decoder.Builder> byTrace) throws IOException {
    for (JsonToken rs = p.nextToken(); rs != JsonToken.END_ARRAY; rs = p.nextToken()) {
      if (rs != JsonToken.START_OBJECT) throw new Decoder.Invalid();
      for (JsonToken t = p.nextToken(); t == JsonToken.FIELD_NAME; t = p.nextToken()) {
        String k = p.currentName();
        JsonToken v = p.nextToken();
        if ((k.equals("scopeSpans") || k.equals("instrumentationLibrarySpans")) && v == JsonToken.START_ARRAY) {
          for (JsonToken ss = p.nextToken(); ss != JsonToken.END_ARRAY; ss = p.nextToken()) {
            if (ss != JsonToken.START_OBJECT) throw new Decoder.Invalid();
            for (JsonToken f = p.nextToken(); f == JsonToken.FIELD_NAME; f = p.nextToken()) {
              String sk = p.currentName();
              JsonToken sv = p.nextToken();
              if (sk.equals("spans") && sv == JsonToken.START_ARRAY) {
                for (JsonToken sp = p.nextToken(); sp != JsonToken.END_ARRAY; sp = p.nextToken()) {
                  if (sp != JsonToken.START_OBJECT) throw new Decoder.Invalid();
                  otlpSpan(p, byTrace);
                }
              } else {
                p.skipChildren();
              }
            }
          }
        } else {
          p.skipChildren();
        }
      }
    }
  }

  static Map<String, Object> keyValues(JsonParser p) throws IOException {
    Map<String, Object> out = new HashMap<>();
    for (JsonToken kv = p.nextToken(); kv != JsonToken.END_ARRAY; kv = p.nextToken()) {
      if (kv != JsonToken.START_OBJECT) {
        p.skipChildren();
        continue;
      }
      String key = "";
      Object value = null;
      for (JsonToken t = p.nextToken(); t == JsonToken.FIELD_NAME; t = p.nextToken()) {
        String k = p.currentName();
        JsonToken v = p.nextToken();
        if (k.equals("key") && v == JsonToken.VALUE_STRING) {
          key = p.getText();
        } else if (k.equals("value") && v == JsonToken.START_OBJECT) {
          for (JsonToken a = p.nextToken(); a == JsonToken.FIELD_NAME; a = p.nextToken()) {
            String ak = p.currentName();
            JsonToken av = p.nextToken();
            switch (ak) {
              case "stringValue" -> value = p.getText();
              case "intValue" -> value = av == JsonToken.VALUE_STRING ? Double.parseDouble(p.getText()) : p.getDoubleValue();
              case "doubleValue" -> value = p.getDoubleValue();
              case "boolValue" -> value = p.getBooleanValue();
              default -> p.skipChildren();
            }
          }
        } else {
          p.skipChildren();
        }
      }
      if (value != null) out.putIfAbsent(key, value);
    }
    return out;
  }

  static void otlpSpan(JsonParser p, Map<String, Decoder.Builder> byTrace) throws IOException {
    String traceId = null, spanId = null, parent = "";
    long start = Long.MAX_VALUE, end = Long.MIN_VALUE;
    boolean error = false;
    Map<String, Object> attrs = Map.of();
    java.util.List<Object[]> evaluations = null;
    for (JsonToken t = p.nextToken(); t == JsonToken.FIELD_NAME; t = p.nextToken()) {
      String k = p.currentName();
      JsonToken v = p.nextToken();
      switch (k) {
        case "traceId" -> traceId = id(v, p, true);
        case "spanId" -> spanId = id(v, p, true);
        case "parentSpanId" -> parent = id(v, p, false);
        case "startTimeUnixNano" -> start = nanos(v, p, Long.MAX_VALUE);
        case "endTimeUnixNano" -> end = nanos(v, p, Long.MIN_VALUE);
        case "status" -> {
          if (v != JsonToken.START_OBJECT) throw new Decoder.Invalid();
          for (JsonToken s = p.nextToken(); s == JsonToken.FIELD_NAME; s = p.nextToken()) {
            String sk = p.currentName();
            JsonToken sv = p.nextToken();
            if (sk.equals("code")) error = statusIsError(sv, p);
            else p.skipChildren();
          }
        }
        case "attributes" -> {
          if (v == JsonToken.START_ARRAY) attrs = keyValues(p);
          else p.skipChildren();
        }
        case "events" -> {
          if (v != JsonToken.START_ARRAY) throw new Decoder.Invalid();
          for (JsonToken ev = p.nextToken(); ev != JsonToken.END_ARRAY; ev = p.nextToken()) {
            if (ev != JsonToken.START_OBJECT) throw new Decoder.Invalid();
            String name = null;
            long time = Long.MIN_VALUE;
            Map<String, Object> ea = Map.of();
            for (JsonToken f = p.nextToken(); f == JsonToken.FIELD_NAME; f = p.nextToken()) {
              String fk = p.currentName();
              JsonToken fv = p.nextToken();
              switch (fk) {
                case "name" -> name = fv == JsonToken.VALUE_STRING ? p.getText() : null;
                case "timeUnixNano" -> time = nanos(fv, p, Long.MIN_VALUE);
                case "attributes" -> {
                  if (fv == JsonToken.START_ARRAY) ea = keyValues(p);
                  else p.skipChildren();
                }
                default -> p.skipChildren();
              }
            }
            if (!"gen_ai.evaluation.result".equals(name)) continue;
            Object evalName = ea.get("gen_ai.evaluation.name");
            if (!(evalName instanceof String)) throw new Decoder.Invalid();
            Object score = ea.get("gen_ai.evaluation.score.value");
            Object label = ea.get("gen_ai.evaluation.score.label");
            if (evaluations == null) evaluations = new java.util.ArrayList<>(1);
            evaluations.add(new Object[] {evalName, label instanceof String ? label : null,
                score instanceof Double d ? d : Double.NaN, "llm_judge", time});
          }
        }
        default -> p.skipChildren();
      }
    }
    if (traceId == null || spanId == null || traceId.isEmpty() || spanId.isEmpty()) throw new Decoder.Invalid();
    if (start != Long.MAX_VALUE && end != Long.MIN_VALUE && end < start) throw new Decoder.Invalid();
    Decoder.addSpan(byTrace, traceId, spanId, parent, start, end, error, attrs, "");
    if (evaluations != null) byTrace.get(traceId).anns.addAll(evaluations);
  }
}
