package dev.triaged.peer.core;

/**
 * bench/rules.yaml, written out (fan_out, no limits): each rule's condition over a
 * {@link TraceState}, its sample rate and key, and its destinations. The (rule, destination)
 * pairs are numbered; a trace's routed-once state is a bit mask over them.
 */
public final class Rules {
  private Rules() {}

  public static final String[] DESTINATIONS = {"support-review", "agent-review", "regressions", "session-replay"};
  public static final String[] KINDS = {"queue", "queue", "dataset", "dataset"};

  public static final String[] RULES = {"thumbs-down", "low-faithfulness", "slow", "errors",
      "tool-failures", "reviewer-flags", "escalations", "session-sample"};
  public static final double[] SAMPLE = {1.0, 0.25, 0.10, 1.0, 1.0, 1.0, 1.0, 0.01};

  /** Pair p routes rule PAIR_RULE[p] to destination PAIR_DEST[p], in rule order. */
  public static final int[] PAIR_RULE = {0, 0, 1, 2, 3, 4, 4, 5, 6, 7};
  public static final int[] PAIR_DEST = {0, 2, 0, 2, 0, 1, 2, 2, 0, 3};

  static final int THUMBS = 0, FAITHFULNESS = 1, HALLUCINATION = 2, CORRECTNESS = 3, ESCALATION = 4;
  /** The feedback names the rules read (`feedback.NAME.*`: the latest annotation of the name). */
  static final String[] FEEDBACK = {"thumbs", "faithfulness", "hallucination", "correctness", "escalation"};

  static int feedbackIndex(String name) {
    switch (name) {
      case "thumbs":
        return THUMBS;
      case "faithfulness":
        return FAITHFULNESS;
      case "hallucination":
        return HALLUCINATION;
      case "correctness":
        return CORRECTNESS;
      case "escalation":
        return ESCALATION;
      default:
        return -1;
    }
  }

  /** Whether rule r's `when` holds for the trace. */
  static boolean matches(int r, TraceState t) {
    switch (r) {
      case 0: // feedback.thumbs.label == "down"
        return "down".equals(t.label(THUMBS));
      case 1: { // feedback.faithfulness.score < 0.5 and feedback.faithfulness.source == "llm_judge"
        double s = t.score(FAITHFULNESS);
        return !Double.isNaN(s) && s < 0.5 && "llm_judge".equals(t.source(FAITHFULNESS));
      }
      case 2: // trace.duration_ms > 5000
        return t.hasDuration() && t.durationMs() > 5000;
      case 3: // trace.error or trace.retry_count > 0
        return t.errorCount > 0 || t.retrySum > 0;
      case 4: // any_span(span.kind == "TOOL" and span.status == "error")
        return t.toolError;
      case 5: // feedback.hallucination.label == "hallucinated" or feedback.correctness.score == 0
        return "hallucinated".equals(t.label(HALLUCINATION)) || t.score(CORRECTNESS) == 0;
      case 6: // feedback.escalation.source == "support"
        return "support".equals(t.source(ESCALATION));
      case 7: // exists(trace.session_id)
        return t.sessionId() != null;
      default:
        return false;
    }
  }

  /** The sampling key: trace.id, or trace.session_id for session-sample. */
  static String sampleKey(int r, TraceState t, String traceId) {
    return r == 7 ? t.sessionId() : traceId;
  }

  /**
   * Evaluates every rule (DESIGN §2: at close and on each late event) and returns the pairs it
   * routes now: matched, sampled, and not routed by an earlier evaluation. Marks them routed.
   */
  public static int evaluate(TraceState t, String traceId) {
    int routedNow = 0;
    for (int r = 0; r < RULES.length; ++r) {
      int pairs = 0;
      for (int p = 0; p < PAIR_RULE.length; ++p) {
        if (PAIR_RULE[p] == r && (t.routed & (1 << p)) == 0) pairs |= 1 << p;
      }
      if (pairs == 0 || !matches(r, t)) continue;
      if (SAMPLE[r] < 1.0 && !(Xxh64.unit(sampleKey(r, t, traceId)) < SAMPLE[r])) continue;
      routedNow |= pairs;
    }
    t.routed |= routedNow;
    return routedNow;
  }
}
