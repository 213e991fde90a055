#include "daemon/ingest.h"

#include <xxhash.h>

#include <cstdio>

#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

ReplayLine ParseReplayLine(std::string_view line, uint64_t line_no) {
  ReplayLine out;
  out.origin.line = line_no;
  // Only a line that mentions "payload" (or "payload_base64") can be a kcat envelope; skip the
  // extra parse otherwise.
  if (line.find("\"payload\"") != std::string_view::npos ||
      line.find("\"payload_base64\"") != std::string_view::npos) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(line.data(),
                                                                                      line.size());
    const bool text = !doc.HasParseError() && doc.IsObject() && doc.HasMember("payload");
    const bool base64 =
        !doc.HasParseError() && doc.IsObject() && !text && doc.HasMember("payload_base64");
    if ((text || base64) && doc.HasMember("topic") && doc["topic"].IsString()) {
      out.origin.topic = doc["topic"].GetString();
      if (auto it = doc.FindMember("partition"); it != doc.MemberEnd() && it->value.IsInt()) {
        out.origin.partition = it->value.GetInt();
      }
      if (auto it = doc.FindMember("offset"); it != doc.MemberEnd() && it->value.IsInt64()) {
        out.origin.offset = it->value.GetInt64();
      }
      if (auto it = doc.FindMember("ts"); it != doc.MemberEnd() && it->value.IsInt64()) {
        out.origin.timestamp_ms = it->value.GetInt64();
      }
      if (auto it = doc.FindMember("key"); it != doc.MemberEnd() && it->value.IsString()) {
        out.origin.key.assign(it->value.GetString(), it->value.GetStringLength());
      }
      const rapidjson::Value& payload = doc[text ? "payload" : "payload_base64"];
      if (payload.IsString() && base64) {
        Result<std::string> bytes =
            FromBase64(std::string_view(payload.GetString(), payload.GetStringLength()));
        if (bytes.ok()) {
          out.payload = std::move(bytes).value();
        } else {
          out.error = std::move(bytes).error();
        }
      } else if (payload.IsString()) {
        out.payload.assign(payload.GetString(), payload.GetStringLength());
      } else if (payload.IsNull()) {
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
