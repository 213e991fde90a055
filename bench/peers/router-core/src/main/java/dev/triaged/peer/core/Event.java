package dev.triaged.peer.core;

/**
 * What one input message holds for one trace, decoded: the facts the rules read of each span and
 * annotation, and the message's bytes for the routed item. A flat POJO (public fields, arrays),
 * so Flink serializes it with its POJO serializer. Missing values: start {@code Long.MAX_VALUE},
 * end and times {@code Long.MIN_VALUE}, scores NaN, strings null.
 */
public final class Event {
  public String traceId;
  public boolean spanTopic;
  public byte[] raw;

  public String[] spanIds = EMPTY_S;
  public long[] starts = EMPTY_L;
  public long[] ends = EMPTY_L;
  public boolean[] roots = EMPTY_B;
  public boolean[] errors = EMPTY_B;
  public boolean[] tools = EMPTY_B; // span.kind == "TOOL"
  public double[] retries = EMPTY_D; // 0 when the span has none
  public String[] sessions = EMPTY_S;

  public String[] annNames = EMPTY_S;
  public String[] annLabels = EMPTY_S;
  public double[] annScores = EMPTY_D;
  public String[] annSources = EMPTY_S;
  public long[] annTimes = EMPTY_L;

  static final String[] EMPTY_S = new String[0];
  static final long[] EMPTY_L = new long[0];
  static final boolean[] EMPTY_B = new boolean[0];
  static final double[] EMPTY_D = new double[0];

  public Event() {}

  public int spanCount() {
    return spanIds.length;
  }

  public int annotationCount() {
    return annNames.length;
  }
}
