package dev.triaged.peer.core;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/** A {@link TraceState} as compact binary (for a state store: no JSON, no events, ~150 bytes). */
public final class TraceCodec {
  private TraceCodec() {}

  static void str(DataOutputStream o, String s) throws IOException {
    o.writeBoolean(s != null);
    if (s != null) o.writeUTF(s);
  }

  static String str(DataInputStream in) throws IOException {
    return in.readBoolean() ? in.readUTF() : null;
  }

  public static byte[] encode(TraceState t) {
    try {
      ByteArrayOutputStream b = new ByteArrayOutputStream(192);
      DataOutputStream o = new DataOutputStream(b);
      o.writeLong(t.openedAt);
      o.writeLong(t.lastSpanAt);
      o.writeLong(t.rootEndAt);
      o.writeLong(t.deadline);
      o.writeLong(t.closedAt);
      o.writeLong(t.expiresAt);
      o.writeByte((t.hasSpan ? 1 : 0) | (t.closed ? 2 : 0) | (t.forgotten ? 4 : 0) | (t.toolError ? 8 : 0));
      o.writeShort(t.routed);
      o.writeInt(t.spanCount);
      o.writeInt(t.errorCount);
      o.writeLong(t.minStart);
      o.writeLong(t.maxEnd);
      o.writeDouble(t.retrySum);
      o.writeInt(t.annotationCount);
      o.writeInt(t.eventCount);
      o.writeInt(t.spanIds.size());
      for (String id : t.spanIds) o.writeUTF(id);
      o.writeInt(t.sessionSpans.size());
      for (int i = 0; i < t.sessionSpans.size(); ++i) {
        o.writeLong(t.sessionSpans.get(i)[0]);
        o.writeBoolean(t.sessionSpans.get(i)[1] == 1);
        str(o, t.sessionValues.get(i));
      }
      for (int f = 0; f < Rules.FEEDBACK.length; ++f) {
        o.writeBoolean(t.fbHave[f]);
        if (!t.fbHave[f]) continue;
        o.writeLong(t.fbTime[f]);
        o.writeDouble(t.fbScore[f]);
        str(o, t.fbLabel[f]);
        str(o, t.fbSource[f]);
      }
      o.flush();
      return b.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static TraceState decode(byte[] bytes) {
    if (bytes == null) return null;
    try {
      DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes));
      TraceState t = new TraceState();
      t.openedAt = in.readLong();
      t.lastSpanAt = in.readLong();
      t.rootEndAt = in.readLong();
      t.deadline = in.readLong();
      t.closedAt = in.readLong();
      t.expiresAt = in.readLong();
      int flags = in.readByte();
      t.hasSpan = (flags & 1) != 0;
      t.closed = (flags & 2) != 0;
      t.forgotten = (flags & 4) != 0;
      t.toolError = (flags & 8) != 0;
      t.routed = in.readShort() & 0xFFFF;
      t.spanCount = in.readInt();
      t.errorCount = in.readInt();
      t.minStart = in.readLong();
      t.maxEnd = in.readLong();
      t.retrySum = in.readDouble();
      t.annotationCount = in.readInt();
      t.eventCount = in.readInt();
      for (int i = 0, n = in.readInt(); i < n; ++i) t.spanIds.add(in.readUTF());
      for (int i = 0, n = in.readInt(); i < n; ++i) {
        long start = in.readLong();
        boolean root = in.readBoolean();
        t.sessionSpans.add(new long[] {start, root ? 1 : 0});
        t.sessionValues.add(str(in));
      }
      for (int f = 0; f < Rules.FEEDBACK.length; ++f) {
        t.fbHave[f] = in.readBoolean();
        if (!t.fbHave[f]) continue;
        t.fbTime[f] = in.readLong();
        t.fbScore[f] = in.readDouble();
        t.fbLabel[f] = str(in);
        t.fbSource[f] = str(in);
      }
      return t;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
