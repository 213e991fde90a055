#include "daemon/ingest.h"

#include <xxhash.h>

#include <cstdio>
#include <limits>
#include <string>

#include <openssl/evp.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rules/json_onepass.h"

namespace triaged {
namespace {

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

// Standard alphabet, padded, no line breaks. A Kafka record's payload is under 2 GiB (its length
// is an int32 on the wire), so it fits EVP_EncodeBlock's int length.
std::string Base64(std::string_view in) {
  std::string out((in.size() + 2) / 3 * 4 + 1, '\0');  // + the NUL EVP_EncodeBlock writes
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

Result<DecodedMessage> DecodeInput(const InputsConfig& inputs, const MessageOrigin& origin,
                                   std::string_view payload) {
  if (!origin.topic.empty()) {
    if (origin.topic == inputs.spans_topic) {
      return DecodeSpans(payload, inputs.spans_format);
    }
    if (origin.topic == inputs.feedback_topic) {
      return DecodeFeedbackKeyed(payload, origin.key, inputs.feedback_format);
    }
  }
  return DecodeAny(payload);
}

Error TraceTooLargeError(size_t spans_rejected, size_t spans_total) {
  return MakeError("trace_too_large", std::to_string(spans_rejected) + " of " +
                                          std::to_string(spans_total) +
                                          " spans refused: the trace would exceed "
                                          "trace.max_trace_bytes");
}

namespace {

// Standard base64 with its padding (RFC 4648 §4), as DeadLetterToJson writes payloads that are
// not UTF-8: the bytes, or an Error saying what is wrong.
Result<std::string> FromBase64(std::string_view in) {
  const auto invalid = [](const std::string& what) {
    return MakeError("invalid_base64", "payload_base64 is not standard base64: " + what);
  };
  if (in.size() % 4 != 0) {
    return invalid("its length, " + std::to_string(in.size()) + ", is not a multiple of 4");
  }
  const size_t padding = in.ends_with("==") ? 2 : in.ends_with("=") ? 1 : 0;
  for (size_t i = 0; i < in.size() - padding; ++i) {
    const char c = in[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/')) {
      return invalid("character " + std::to_string(i) +
                     (c == '=' ? " is padding before the end" : " is not in its alphabet"));
    }
  }
  // EVP_DecodeBlock decodes whole quanta: its length counts the padding's zero bytes too.
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0 || static_cast<size_t>(n) < padding) return invalid("libcrypto refuses it");
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

}  // namespace

Error UnjoinedError(const std::vector<Annotation>& unjoined, const std::string& searched) {
  const size_t more = unjoined.size() - 1;
  return MakeError(reason::kMissingTraceId,
                   "no trace id, and no trace " + searched + " holds span " +
                       unjoined.front().span_id +
                       (more > 0 ? " (nor the spans of " + std::to_string(more) + " more)" : ""));
}

namespace {

// The members of a kcat -J envelope that ParseReplayLine reads, from one SAX walk of the line
// (no document): the first member of each name, as FindMember finds it, and its value as far as
// the envelope needs it. Deeper values are walked (the line must be valid JSON) but not kept.
class EnvelopeWalk {
 public:
  enum Field { kTopic, kPartition, kOffset, kTs, kKey, kPayload, kPayloadBase64, kFields };
  struct Value {
    enum Kind : uint8_t { kAbsent, kNull, kBool, kNeg, kPos, kDouble, kString, kContainer };
    Kind kind = kAbsent;
    int64_t i = 0;   // kNeg
    uint64_t u = 0;  // kPos
    std::string_view s;

    bool present() const { return kind != kAbsent; }
    // As rapidjson::Value's IsInt / IsInt64, which tell by the value.
    bool IsInt() const {
      return (kind == kNeg && i >= std::numeric_limits<int32_t>::min()) ||
             (kind == kPos && u <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max()));
    }
    bool IsInt64() const {
      return kind == kNeg ||
             (kind == kPos && u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    }
    int64_t GetInt64() const { return kind == kNeg ? i : static_cast<int64_t>(u); }
  };

  // Parses `buf` (`size` bytes and a NUL, decoded in place): false when it is not a JSON object.
  bool Walk(char* buf, size_t size) {
    for (Value& v : fields_) v = Value{};
    depth_ = 0;
    field_ = -1;
    object_ = false;
    return decode::onepass::WalkInsitu(buf, size, *this) && object_;
  }
  const Value& operator[](Field f) const { return fields_[f]; }

  // --- the SAX handler
  bool Null() { return Scalar(Value::kNull, 0, 0, {}); }
  bool Bool(bool) { return Scalar(Value::kBool, 0, 0, {}); }
  bool Int(int i) { return Int64(i); }
  bool Int64(int64_t i) {
    return i < 0 ? Scalar(Value::kNeg, i, 0, {})
                 : Scalar(Value::kPos, 0, static_cast<uint64_t>(i), {});
  }
  bool Uint(unsigned u) { return Uint64(u); }
  bool Uint64(uint64_t u) { return Scalar(Value::kPos, 0, u, {}); }
  bool Double(double) { return Scalar(Value::kDouble, 0, 0, {}); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return false; }
  bool String(const char* s, rapidjson::SizeType len, bool) {
    return Scalar(Value::kString, 0, 0, std::string_view(s, len));
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    if (depth_ != 1) return true;
    static constexpr std::string_view kNames[kFields] = {
        "topic", "partition", "offset", "ts", "key", "payload", "payload_base64"};
    const std::string_view k(s, len);
    field_ = -1;
    for (int f = 0; f < kFields; ++f) {
      if (k == kNames[f]) {
        if (!fields_[f].present()) field_ = f;  // the first member of a name is the one read
        break;
      }
    }
    return true;
  }
  bool StartObject() {
    if (depth_ == 0) object_ = true;
    return Start();
  }
  bool StartArray() {
    if (depth_ == 0) return false;  // not an object: not an envelope
    return Start();
  }
  bool EndObject(rapidjson::SizeType) { return --depth_, true; }
  bool EndArray(rapidjson::SizeType) { return --depth_, true; }

 private:
  bool Start() {
    if (depth_ == 1 && field_ >= 0) {
      fields_[field_].kind = Value::kContainer;
      field_ = -1;
    }
    ++depth_;
    return true;
  }
  bool Scalar(Value::Kind kind, int64_t i, uint64_t u, std::string_view s) {
    if (depth_ == 0) return false;  // not an object: not an envelope
    if (depth_ == 1 && field_ >= 0) {
      Value& v = fields_[field_];
      v.kind = kind;
      v.i = i;
      v.u = u;
      v.s = s;
      field_ = -1;
    }
    return true;
  }

  Value fields_[kFields];
  int depth_ = 0;
  int field_ = -1;
  bool object_ = false;
};

}  // namespace

ReplayLine ParseReplayLine(std::string_view line, uint64_t line_no) {
  ReplayLine out;
  out.origin.line = line_no;
  // Only a line that mentions "payload" (or "payload_base64") can be a kcat envelope; skip the
  // parse otherwise.
  if (line.find("\"payload\"") != std::string_view::npos ||
      line.find("\"payload_base64\"") != std::string_view::npos) {
    // A byte-order mark is skipped, as a document parse of the line skips it.
    const std::string_view json = line.starts_with("\xef\xbb\xbf") ? line.substr(3) : line;
    thread_local std::string buf;
    thread_local EnvelopeWalk walk;
    buf.assign(json);
    using F = EnvelopeWalk;
    const bool parsed = walk.Walk(buf.data(), buf.size());
    const bool text = parsed && walk[F::kPayload].present();
    const bool base64 = parsed && !text && walk[F::kPayloadBase64].present();
    const EnvelopeWalk::Value& topic = walk[F::kTopic];
    if ((text || base64) && topic.kind == F::Value::kString) {
      // The topic as a C string: up to its first NUL.
      out.origin.topic.assign(topic.s.substr(0, topic.s.find('\0')));
      if (walk[F::kPartition].IsInt()) {
        out.origin.partition = static_cast<int32_t>(walk[F::kPartition].GetInt64());
      }
      if (walk[F::kOffset].IsInt64()) out.origin.offset = walk[F::kOffset].GetInt64();
      if (walk[F::kTs].IsInt64()) out.origin.timestamp_ms = walk[F::kTs].GetInt64();
      if (walk[F::kKey].kind == F::Value::kString) out.origin.key.assign(walk[F::kKey].s);
      const EnvelopeWalk::Value& payload = walk[text ? F::kPayload : F::kPayloadBase64];
      if (payload.kind == F::Value::kString && base64) {
        Result<std::string> bytes = FromBase64(payload.s);
        if (bytes.ok()) {
          out.payload = std::move(bytes).value();
        } else {
          out.error = std::move(bytes).error();
        }
      } else if (payload.kind == F::Value::kString) {
        out.payload.assign(payload.s);
      } else if (payload.kind == F::Value::kNull) {
        out.null_payload = true;
      } else {
        // Not a kcat envelope after all (payload must be a string); treat as a bare event.
        out.origin.topic.clear();
        out.origin.partition.reset();
        out.origin.offset.reset();
        out.origin.timestamp_ms.reset();
        out.origin.key.clear();
        out.payload.assign(line);
      }
      return out;
    }
  }
  out.payload.assign(line);
  return out;
}

namespace {

// The dead-letter document with the first `keep` bytes of the payload (all of it when keep is
// the payload's size); a cut payload is described by its length and hash.
std::string WriteDeadLetter(const DeadLetter& record, size_t keep) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("reason");
  w.String(record.reason.data(), static_cast<rapidjson::SizeType>(record.reason.size()));
  w.Key("message");
  // Decoder messages may quote input bytes; never emit invalid UTF-8.
  const std::string message = ValidUtf8(record.message) ? record.message : "(not valid UTF-8)";
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.Key("topic");
  if (record.origin.topic.empty())
    w.Null();
  else
    w.String(record.origin.topic.c_str());
  w.Key("partition");
  if (record.origin.partition)
    w.Int(*record.origin.partition);
  else
    w.Null();
  w.Key("offset");
  if (record.origin.offset)
    w.Int64(*record.origin.offset);
  else
    w.Null();
  if (record.origin.line != 0) {
    w.Key("line");
    w.Uint64(record.origin.line);
  }
  for (const auto& [key, value] : record.extra) {
    w.Key(key.c_str());
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  std::string_view payload = record.payload.substr(0, keep);
  // Cut at a UTF-8 boundary when the whole payload is text.
  const bool text = ValidUtf8(record.payload);
  while (text && !payload.empty() && payload.size() < record.payload.size() &&
         (static_cast<unsigned char>(record.payload[payload.size()]) & 0xC0) == 0x80) {
    payload.remove_suffix(1);
  }
  if (text) {
    w.Key("payload");
    w.String(payload.data(), static_cast<rapidjson::SizeType>(payload.size()));
  } else {
    w.Key("payload_base64");
    const std::string b64 = Base64(payload);
    w.String(b64.data(), static_cast<rapidjson::SizeType>(b64.size()));
  }
  if (payload.size() < record.payload.size()) {
    w.Key("payload_truncated");
    w.StartObject();
    w.Key("bytes");
    w.Uint64(record.payload.size());
    w.Key("xxh64");
    char hash[17];
    std::snprintf(
        hash, sizeof hash, "%016llx",
        static_cast<unsigned long long>(XXH64(record.payload.data(), record.payload.size(), 0)));
    w.String(hash);
    w.EndObject();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string DeadLetterToJson(const DeadLetter& record, size_t max_bytes) {
  std::string whole = WriteDeadLetter(record, record.payload.size());
  if (whole.size() <= max_bytes) return whole;
  // Escaping (a control byte is 6 bytes in JSON) and base64 (4 per 3) make the document larger
  // than the payload: keep the longest prefix that fits.
  size_t lo = 0, hi = record.payload.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    if (WriteDeadLetter(record, mid).size() <= max_bytes) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return WriteDeadLetter(record, lo);
}

}  // namespace triaged
