package dev.triaged.peer.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One trace as triaged's engine holds it (rules/engine.cc), reduced to what the bench's rules
 * read, maintained incrementally: no re-parse of the trace's events per event. Also its close
 * state (open, closed within the late window, forgotten) and its routed-once mask. Times are
 * the peer's clock in milliseconds.
 */
public final class TraceState {
  // Close state.
  public long openedAt, lastSpanAt, rootEndAt = -1, deadline, closedAt, expiresAt;
  public boolean hasSpan, closed, forgotten;
  public int routed; // bit mask over Rules.PAIR_*

  // The trace summary (DESIGN §2.1), for the rules.
  public int spanCount, errorCount;
  public long minStart = Long.MAX_VALUE, maxEnd = Long.MIN_VALUE;
  public boolean toolError;
  public double retrySum;
  public List<String> spanIds = new ArrayList<>(4);
  // Roots and spans with a session id, for trace.session_id: (start, root, session).
  public List<long[]> sessionSpans = new ArrayList<>(2);
  public List<String> sessionValues = new ArrayList<>(2);
  // The latest annotation of each name the rules read (by timestamp; ties: the later one).
  public long[] fbTime = new long[Rules.FEEDBACK.length];
  public boolean[] fbHave = new boolean[Rules.FEEDBACK.length];
  public String[] fbLabel = new String[Rules.FEEDBACK.length];
  public double[] fbScore = new double[Rules.FEEDBACK.length];
  public String[] fbSource = new String[Rules.FEEDBACK.length];
  public int annotationCount;
  public int eventCount; // messages added (the Kafka Streams peer keys its event store by it)

  public TraceState() {}

  public String label(int i) {
    return fbHave[i] ? fbLabel[i] : null;
  }

  public double score(int i) {
    return fbHave[i] ? fbScore[i] : Double.NaN;
  }

  public String source(int i) {
    return fbHave[i] ? fbSource[i] : null;
  }

  public boolean hasDuration() {
    return minStart != Long.MAX_VALUE && maxEnd != Long.MIN_VALUE;
  }

  public double durationMs() {
    return (maxEnd - minStart) / 1e6;
  }

  /** trace.session_id: the root's (the earliest-starting root) if it has one, else the earliest-starting other span's. */
  public String sessionId() {
    int root = -1;
    for (int i = 0; i < sessionSpans.size(); ++i) {
      long[] s = sessionSpans.get(i);
      if (s[1] == 1 && (root < 0 || s[0] < sessionSpans.get(root)[0])) root = i;
    }
    if (root >= 0 && sessionValues.get(root) != null) return sessionValues.get(root);
    int best = -1;
    for (int i = 0; i < sessionSpans.size(); ++i) {
      if (i == root || sessionValues.get(i) == null) continue;
      if (best < 0 || sessionSpans.get(i)[0] < sessionSpans.get(best)[0]) best = i;
    }
    return best >= 0 ? sessionValues.get(best) : null;
  }

  void addSpans(Event e) {
    for (int i = 0; i < e.spanCount(); ++i) {
      if (spanIds.contains(e.spanIds[i])) continue; // the same span again
      spanIds.add(e.spanIds[i]);
      ++spanCount;
      if (e.errors[i]) ++errorCount;
      if (e.errors[i] && e.tools[i]) toolError = true;
      if (e.starts[i] != Long.MAX_VALUE) minStart = Math.min(minStart, e.starts[i]);
      if (e.ends[i] != Long.MIN_VALUE) maxEnd = Math.max(maxEnd, e.ends[i]);
      retrySum += e.retries[i];
      if (e.roots[i] || e.sessions[i] != null) {
        sessionSpans.add(new long[] {e.starts[i], e.roots[i] ? 1 : 0});
        sessionValues.add(e.sessions[i]);
      }
    }
  }

  void addAnnotations(Event e) {
    for (int i = 0; i < e.annotationCount(); ++i) {
      ++annotationCount;
      int f = Rules.feedbackIndex(e.annNames[i]);
      if (f < 0) continue;
      if (fbHave[f] && e.annTimes[i] < fbTime[f]) continue;
      fbHave[f] = true;
      fbTime[f] = e.annTimes[i];
      fbLabel[f] = e.annLabels[i];
      fbScore[f] = e.annScores[i];
      fbSource[f] = e.annSources[i];
    }
  }

  /** Forgets the context (the late window is over); the routed-once mask stays. */
  void forget() {
    forgotten = true;
    spanCount = errorCount = annotationCount = 0;
    minStart = Long.MAX_VALUE;
    maxEnd = Long.MIN_VALUE;
    toolError = false;
    retrySum = 0;
    spanIds.clear();
    sessionSpans.clear();
    sessionValues.clear();
    Arrays.fill(fbHave, false);
  }
}
