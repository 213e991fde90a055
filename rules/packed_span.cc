#include "rules/packed_span.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include "rules/wire.h"

namespace triaged {
namespace {

// Layout: a flags byte, the status, the strings as varint length + bytes, times and numbers as
// 8 raw bytes when present, the byte count; then the canonical fields as a code each: 0 absent,
// 1 a string follows, 2 + k the string at byte k of the attributes (the canonical mapping
// copies attributes, so most refer to one); then where the resource starts (from the
// attributes), and the attributes and resource as a count then key + tagged value. Reading the
// fields in place (Peek) thus never walks the attributes.
enum Flag : uint8_t {
  kStart = 1 << 0,
  kEnd = 1 << 1,
  kInputTokens = 1 << 2,
  kOutputTokens = 1 << 3,
  kRetryCount = 1 << 4,
};

class Writer : public WireWriter {
 public:
  explicit Writer(std::string& out) : WireWriter(out) { out_.clear(); }

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
  // `string_at[i]` is set to where the string value of attribute i starts (its length), if
  // it has one.
  void Attrs(const Attributes& attrs, std::vector<size_t>* string_at = nullptr) {
    Varint(attrs.size());
    if (string_at != nullptr) string_at->assign(attrs.size(), 0);
    for (size_t i = 0; i < attrs.size(); ++i) {
      Str(attrs[i].first);
      if (string_at != nullptr && attrs[i].second.kind == AttrValue::Kind::kString) {
        (*string_at)[i] = out_.size() + 1;  // after the kind byte
      }
      Value(attrs[i].second);
    }
  }
  void Canonical(const std::optional<std::string>& field, const Attributes& attrs,
                 const std::vector<size_t>& string_at) {
    if (!field) return Byte(0);
    for (size_t i = 0; i < attrs.size(); ++i) {
      const AttrValue& v = attrs[i].second;
      if (v.kind == AttrValue::Kind::kString && v.s == *field) return Varint(2 + string_at[i]);
    }
    Byte(1);
    Str(*field);
  }
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
  // The canonical fields' codes: a view of each string, where the attributes start and where
  // the resource does.
  struct Canonical {
    std::optional<std::string_view> fields[6];
    const char* attributes;
    const char* resource;
  };
  Canonical CanonicalFields() {
    Canonical c;
    uint64_t codes[6];
    for (size_t k = 0; k < 6; ++k) {
      codes[k] = Varint();
      if (codes[k] == 1) c.fields[k] = StrView();
    }
    const uint64_t resource_at = Varint();
    c.attributes = p_;
    c.resource = p_ + resource_at;
    for (size_t k = 0; k < 6; ++k) {
      if (codes[k] >= 2) c.fields[k] = Reader(c.attributes + (codes[k] - 2)).StrView();
    }
    return c;
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

  void SkipValue() {
    switch (static_cast<AttrValue::Kind>(Byte())) {
      case AttrValue::Kind::kNull: break;
      case AttrValue::Kind::kBool: ++p_; break;
      case AttrValue::Kind::kNumber: p_ += sizeof(double); break;
      case AttrValue::Kind::kString: StrView(); break;
      case AttrValue::Kind::kArray:
        for (uint64_t n = Varint(); n > 0; --n) SkipValue();
        break;
    }
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
  thread_local std::string tail;  // the attributes and the resource
  thread_local std::vector<size_t> string_at;
  Writer t(tail);
  t.Attrs(span.attributes, &string_at);
  const size_t resource_at = t.size();
  t.Attrs(span.resource);
  for (const std::optional<std::string>* field :
       {&span.model, &span.input, &span.output, &span.session_id, &span.user_id,
        &span.prompt_version}) {
    w.Canonical(*field, span.attributes, string_at);
  }
  w.Varint(resource_at);
  w.Append(tail);
  if (tail.capacity() > (1u << 20)) std::string().swap(tail);
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
  const Reader::Canonical c = r.CanonicalFields();
  Reader(c.attributes).AttrsInto(span.attributes);
  Reader(c.resource).AttrsInto(span.resource);
  std::optional<std::string>* fields[] = {&span.model,      &span.input,   &span.output,
                                          &span.session_id, &span.user_id, &span.prompt_version};
  for (size_t k = 0; k < std::size(fields); ++k) {
    if (!c.fields[k]) {
      fields[k]->reset();
    } else if (*fields[k]) {
      (*fields[k])->assign(*c.fields[k]);  // its storage reused
    } else {
      fields[k]->emplace(*c.fields[k]);
    }
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
  const Reader::Canonical c = r.CanonicalFields();
  std::copy(std::begin(c.fields), std::end(c.fields), std::begin(f.canonical));
  for (auto [at, attrs] : {std::pair{c.attributes, &f.attributes}, {c.resource, &f.resource}}) {
    Reader list(at);
    attrs->count_ = list.Varint();
    attrs->data_ = list.position();
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

bool PackedSpan::Attrs::Find(std::string_view key, AttrValue& out) const {
  Reader r(data_);
  for (uint64_t n = count_; n > 0; --n) {
    if (r.StrView() == key) {
      r.ValueInto(out);
      return true;
    }
    r.SkipValue();
  }
  return false;
}

}  // namespace triaged
