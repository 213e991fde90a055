package dev.triaged.peer.core;

/**
 * triaged's close and late-feedback semantics (DESIGN §2, rules/engine.cc) on one trace: a trace
 * closes `decision_wait` after its last span arrived, or `root_grace` after a root span that
 * has ended arrived, or `max_wait` after it opened, whichever is first; at close every rule is
 * evaluated; an event for a closed trace within `late_feedback_window` is added to it and
 * re-evaluates; after the window the context is forgotten but the routed-once state is kept,
 * so a (trace, rule, destination) is routed at most once. The clock is the peer's (arrival
 * time, as `triaged run` uses), in milliseconds.
 */
public final class Engine {
  // bench/rules.yaml `trace:`.
  public static final long DECISION_WAIT_MS = 1_000;
  public static final long ROOT_GRACE_MS = 500;
  public static final long MAX_WAIT_MS = 60_000;
  public static final long LATE_WINDOW_MS = 600_000;

  public static final int NOTHING = 0, CLOSE = 1, LATE = 2;

  private Engine() {}

  public static long deadline(TraceState t) {
    long last = t.hasSpan ? t.lastSpanAt : t.openedAt;
    long d = Math.min(last + DECISION_WAIT_MS, t.openedAt + MAX_WAIT_MS);
    if (t.rootEndAt >= 0) d = Math.min(d, t.rootEndAt + ROOT_GRACE_MS);
    return d;
  }

  /** A new trace, opened at `now`. */
  public static TraceState open(long now) {
    TraceState t = new TraceState();
    t.openedAt = now;
    t.deadline = deadline(t);
    return t;
  }

  /**
   * Adds one message's events of the trace at `now`. Returns CLOSE when the trace must be
   * evaluated at close now, LATE when it was closed already (re-evaluate), else NOTHING (the
   * caller keeps a timer at {@code t.deadline}).
   */
  public static int add(TraceState t, Event e, long now) {
    ++t.eventCount;
    if (t.closed && t.forgotten) {
      // Decided and forgotten: this event is late, its context is gone (DESIGN §4 "context").
      t.forgotten = false;
      t.closedAt = now;
      t.expiresAt = now + LATE_WINDOW_MS;
    }
    if (!t.closed && e.spanCount() > 0) {
      t.hasSpan = true;
      t.lastSpanAt = now;
      for (int i = 0; i < e.spanCount(); ++i) {
        if (e.roots[i] && e.ends[i] != Long.MIN_VALUE) t.rootEndAt = now;
      }
    }
    t.addSpans(e);
    t.addAnnotations(e);
    if (t.closed) return LATE;
    t.deadline = deadline(t);
    if (t.deadline <= now) {
      close(t, now);
      return CLOSE;
    }
    return NOTHING;
  }

  /**
   * An open trace whose deadline has passed closes at its deadline before a new event is added
   * (triaged advances its clock first): true when it did, and the caller evaluates it at close.
   */
  public static boolean closeIfDue(TraceState t, long now) {
    if (t.closed || t.deadline > now) return false;
    close(t, t.deadline);
    return true;
  }

  /** Closes an open trace at `at` (its deadline, or now); the caller evaluates it. */
  public static void close(TraceState t, long at) {
    t.closed = true;
    t.closedAt = at;
    t.expiresAt = at + LATE_WINDOW_MS;
  }

  /** The late window of a closed trace is over: forget its context, keep what was routed. */
  public static void forget(TraceState t) {
    t.forget();
  }
}
