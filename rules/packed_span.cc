#include "rules/packed_span.h"

#include <cstring>
#include <string_view>

namespace triaged {
namespace {

// Layout: a flags byte, the status, the strings as varint length + bytes, times and numbers as
// 8 raw bytes when present, attributes and resource as a count then key + tagged value, and
// the canonical fields as a code each: 0 absent, 1 a string follows, 2 + i the string value of
// attribute i (the canonical mapping copies attributes, so most are a single byte here).
enum Flag : uint8_t {
  kStart = 1 << 0,
  kEnd = 1 << 1,
  kInputTokens = 1 << 2,
  kOutputTokens = 1 << 3,
  kRetryCount = 1 << 4,
};

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) { out_.clear(); }

  void Byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      Byte(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    Byte(static_cast<uint8_t>(v));
  }
  void Str(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  template <typename T>
  void Raw(T v) {
    char buf[sizeof v];
    std::memcpy(buf, &v, sizeof v);
    out_.append(buf, sizeof v);
  }
  void Value(const AttrValue& v) {
    Byte(static_cast<uint8_t>(v.kind));
    switch (v.kind) {
      case AttrValue::Kind::kNull: break;
      case AttrValue::Kind::kBool: Byte(v.b ? 1 : 0); break;
      case AttrValue::Kind::kNumber: Raw(v.n); break;
      case AttrValue::Kind::kString: Str(v.s); break;
      case AttrValue::Kind::kArray:
        Varint(v.items.size());
        for (const AttrValue& item : v.items) Value(item);
        break;
    }
  }
  void Attrs(const Attributes& attrs) {
    Varint(attrs.size());
    for (const auto& [key, value] : attrs) {
      Str(key);
      Value(value);
    }
  }
  void Canonical(const std::optional<std::string>& field, const Attributes& attrs) {
    if (!field) return Byte(0);
    for (size_t i = 0; i < attrs.size(); ++i) {
      const AttrValue& v = attrs[i].second;
      if (v.kind == AttrValue::Kind::kString && v.s == *field) return Varint(2 + i);
    }
    Byte(1);
    Str(*field);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(const char* p) : p_(p) {}

  uint8_t Byte() { return static_cast<uint8_t>(*p_++); }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const uint8_t b = Byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  }
  std::string Str() {
    const size_t n = Varint();
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  template <typename T>
  T Raw() {
    T v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  AttrValue Value() {
    switch (static_cast<AttrValue::Kind>(Byte())) {
      case AttrValue::Kind::kNull: return AttrValue::Null();
      case AttrValue::Kind::kBool: return AttrValue::Bool(Byte() != 0);
      case AttrValue::Kind::kNumber: return AttrValue::Number(Raw<double>());
      case AttrValue::Kind::kString: return AttrValue::String(Str());
      case AttrValue::Kind::kArray: {
        std::vector<AttrValue> items(Varint());
        for (AttrValue& item : items) item = Value();
        return AttrValue::Array(std::move(items));
      }
    }
    return AttrValue::Null();
  }
  Attributes Attrs() {
    Attributes attrs(Varint());
    for (auto& [key, value] : attrs) {
      key = Str();
      value = Value();
    }
    return attrs;
  }
  std::optional<std::string> Canonical(const Attributes& attrs) {
    const uint64_t code = Varint();
    if (code == 0) return std::nullopt;
    if (code == 1) return Str();
    return attrs[code - 2].second.s;
  }

 private:
  const char* p_;
};

}  // namespace

PackedSpan::PackedSpan(const Span& span) {
  thread_local std::string buffer;
  Writer w(buffer);
  uint8_t flags = 0;
  if (span.start_ns) flags |= kStart;
  if (span.end_ns) flags |= kEnd;
  if (span.input_tokens) flags |= kInputTokens;
  if (span.output_tokens) flags |= kOutputTokens;
  if (span.retry_count) flags |= kRetryCount;
  w.Byte(flags);
  w.Byte(static_cast<uint8_t>(span.status));
  w.Str(span.span_id);
  w.Str(span.parent_span_id);
  w.Str(span.name);
  w.Str(span.status_message);
  w.Str(span.kind);
  if (span.start_ns) w.Raw(*span.start_ns);
  if (span.end_ns) w.Raw(*span.end_ns);
  if (span.input_tokens) w.Raw(*span.input_tokens);
  if (span.output_tokens) w.Raw(*span.output_tokens);
  if (span.retry_count) w.Raw(*span.retry_count);
  w.Varint(span.bytes);
  w.Attrs(span.attributes);
  w.Attrs(span.resource);
  for (const std::optional<std::string>* field :
       {&span.model, &span.input, &span.output, &span.session_id, &span.user_id,
        &span.prompt_version}) {
    w.Canonical(*field, span.attributes);
  }
  size_ = static_cast<uint32_t>(buffer.size());
  data_ = std::make_unique_for_overwrite<char[]>(size_);
  std::memcpy(data_.get(), buffer.data(), size_);
  // A huge span must not pin a huge scratch buffer in the thread.
  if (buffer.capacity() > (1u << 20)) std::string().swap(buffer);
}

Span PackedSpan::Unpack(const std::string& trace_id) const {
  Reader r(data_.get());
  Span span;
  span.trace_id = trace_id;
  const uint8_t flags = r.Byte();
  span.status = static_cast<SpanStatus>(r.Byte());
  span.span_id = r.Str();
  span.parent_span_id = r.Str();
  span.name = r.Str();
  span.status_message = r.Str();
  span.kind = r.Str();
  if (flags & kStart) span.start_ns = r.Raw<int64_t>();
  if (flags & kEnd) span.end_ns = r.Raw<int64_t>();
  if (flags & kInputTokens) span.input_tokens = r.Raw<double>();
  if (flags & kOutputTokens) span.output_tokens = r.Raw<double>();
  if (flags & kRetryCount) span.retry_count = r.Raw<double>();
  span.bytes = r.Varint();
  span.attributes = r.Attrs();
  span.resource = r.Attrs();
  for (std::optional<std::string>* field :
       {&span.model, &span.input, &span.output, &span.session_id, &span.user_id,
        &span.prompt_version}) {
    *field = r.Canonical(span.attributes);
  }
  return span;
}

}  // namespace triaged
