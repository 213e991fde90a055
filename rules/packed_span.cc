#include "rules/packed_span.h"

#include <cstring>
#include <string_view>
#include <vector>

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
  std::string_view StrView() {
    const size_t n = Varint();
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  void StrInto(std::string& s) { s.assign(StrView()); }
  template <typename T>
  T Raw() {
    T v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  // In place, reusing `v`'s storage.
  void ValueInto(AttrValue& v) {
    v.kind = static_cast<AttrValue::Kind>(Byte());
    v.b = false;
    v.n = 0;
    v.s.clear();
    switch (v.kind) {
      case AttrValue::Kind::kNull: break;
      case AttrValue::Kind::kBool: v.b = Byte() != 0; break;
      case AttrValue::Kind::kNumber: v.n = Raw<double>(); break;
      case AttrValue::Kind::kString: StrInto(v.s); break;
      case AttrValue::Kind::kArray:
        v.items.resize(Varint());
        for (AttrValue& item : v.items) ValueInto(item);
        return;
    }
    v.items.clear();
  }
  void AttrsInto(Attributes& attrs) {
    attrs.resize(Varint());
    for (auto& [key, value] : attrs) {
      StrInto(key);
      ValueInto(value);
    }
  }
  void CanonicalInto(const Attributes& attrs, std::optional<std::string>& field) {
    const uint64_t code = Varint();
    if (code == 0) {
      field.reset();
      return;
    }
    if (!field) field.emplace();  // else its storage is reused
    if (code == 1) {
      StrInto(*field);
    } else {
      field->assign(attrs[code - 2].second.s);
    }
  }

  template <typename Visitor>
  void VisitValue(Visitor& v) {
    switch (static_cast<AttrValue::Kind>(Byte())) {
      case AttrValue::Kind::kNull: v.Null(); return;
      case AttrValue::Kind::kBool: v.Bool(Byte() != 0); return;
      case AttrValue::Kind::kNumber: v.Number(Raw<double>()); return;
      case AttrValue::Kind::kString: v.String(StrView()); return;
      case AttrValue::Kind::kArray:
        v.StartArray();
        for (uint64_t n = Varint(); n > 0; --n) VisitValue(v);
        v.EndArray();
        return;
    }
  }
  const char* position() const { return p_; }

  // Skips a value; the view of a string value, else an empty optional.
  std::optional<std::string_view> SkipValue() {
    switch (static_cast<AttrValue::Kind>(Byte())) {
      case AttrValue::Kind::kNull: break;
      case AttrValue::Kind::kBool: ++p_; break;
      case AttrValue::Kind::kNumber: p_ += sizeof(double); break;
      case AttrValue::Kind::kString: return StrView();
      case AttrValue::Kind::kArray:
        for (uint64_t n = Varint(); n > 0; --n) SkipValue();
        break;
    }
    return std::nullopt;
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
  Span span;
  UnpackInto(trace_id, span);
  return span;
}

void PackedSpan::UnpackInto(const std::string& trace_id, Span& span) const {
  Reader r(data_.get());
  span.trace_id.assign(trace_id);
  const uint8_t flags = r.Byte();
  span.status = static_cast<SpanStatus>(r.Byte());
  r.StrInto(span.span_id);
  r.StrInto(span.parent_span_id);
  r.StrInto(span.name);
  r.StrInto(span.status_message);
  r.StrInto(span.kind);
  auto raw = [&r, flags]<typename T>(uint8_t flag, std::optional<T>& v) {
    if (flags & flag) {
      v = r.Raw<T>();
    } else {
      v.reset();
    }
  };
  raw(kStart, span.start_ns);
  raw(kEnd, span.end_ns);
  raw(kInputTokens, span.input_tokens);
  raw(kOutputTokens, span.output_tokens);
  raw(kRetryCount, span.retry_count);
  span.bytes = r.Varint();
  r.AttrsInto(span.attributes);
  r.AttrsInto(span.resource);
  for (std::optional<std::string>* field :
       {&span.model, &span.input, &span.output, &span.session_id, &span.user_id,
        &span.prompt_version}) {
    r.CanonicalInto(span.attributes, *field);
  }
}

PackedSpan::Fields PackedSpan::Peek() const {
  Reader r(data_.get());
  Fields f;
  const uint8_t flags = r.Byte();
  f.status = static_cast<SpanStatus>(r.Byte());
  f.span_id = r.StrView();
  f.parent_span_id = r.StrView();
  f.root = f.parent_span_id.empty();
  f.name = r.StrView();
  f.status_message = r.StrView();
  f.kind = r.StrView();
  if (flags & kStart) f.start_ns = r.Raw<int64_t>();
  if (flags & kEnd) f.end_ns = r.Raw<int64_t>();
  if (flags & kInputTokens) f.input_tokens = r.Raw<double>();
  if (flags & kOutputTokens) f.output_tokens = r.Raw<double>();
  if (flags & kRetryCount) f.retry_count = r.Raw<double>();
  r.Varint();  // bytes
  // The string values of the attributes, for the canonical fields that are one of them.
  thread_local std::vector<std::optional<std::string_view>> attr_strings;
  f.attributes.count_ = r.Varint();
  f.attributes.data_ = r.position();
  attr_strings.resize(f.attributes.count_);
  for (std::optional<std::string_view>& value : attr_strings) {
    r.StrView();
    value = r.SkipValue();
  }
  f.resource.count_ = r.Varint();
  f.resource.data_ = r.position();
  for (uint64_t n = f.resource.count_; n > 0; --n) {
    r.StrView();
    r.SkipValue();
  }
  for (std::optional<std::string_view>& field : f.canonical) {
    const uint64_t code = r.Varint();
    if (code == 1) {
      field = r.StrView();
    } else if (code >= 2) {
      field = attr_strings[code - 2];
    }
  }
  return f;
}

std::optional<int64_t> PackedSpan::start_ns() const {
  Reader r(data_.get());
  const uint8_t flags = r.Byte();
  r.Byte();                                 // status
  for (int i = 0; i < 5; ++i) r.StrView();  // span id, parent, name, status message, kind
  if (flags & kStart) return r.Raw<int64_t>();
  return std::nullopt;
}

void PackedSpan::Attrs::Visit(Visitor& visitor) const {
  Reader r(data_);
  for (uint64_t n = count_; n > 0; --n) {
    visitor.Key(r.StrView());
    r.VisitValue(visitor);
  }
}

bool PackedSpan::Attrs::Find(std::string_view key, Visitor& visitor) const {
  Reader r(data_);
  for (uint64_t n = count_; n > 0; --n) {
    if (r.StrView() == key) {
      r.VisitValue(visitor);
      return true;
    }
    r.SkipValue();
  }
  return false;
}

}  // namespace triaged
