#include "rules/packed_span.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "rules/trace_key.h"

namespace triaged {
namespace {

// Layout: a flags byte, the status, the span id and parent span id (a 0 then 8 bytes for 16
// lowercase hex digits, else a varint length + 1 then the bytes), the other strings as varint
// length + bytes, times and numbers as 8 raw bytes when present, the byte count; then the
// canonical fields as a code each: 0 absent, 1 a string follows, 2 + k the string at byte k of
// the attributes (the canonical mapping copies attributes, so most refer to one); then where the
// resource starts (from the attributes), and the attributes and resource as a count then key +
// tagged value. Reading the fields in place (Peek) thus never walks the attributes. A key is a
// varint: 2n + 1 for key n of the key table, or 2 × its length with its bytes following.
enum Flag : uint8_t {
  kStart = 1 << 0,
  kEnd = 1 << 1,
  kInputTokens = 1 << 2,
  kOutputTokens = 1 << 3,
  kRetryCount = 1 << 4,
};

// Where the packed bytes go: a count of them (the first pass, which sizes the allocation) or the
// allocation itself (the second). Both passes run the same code, so they cannot disagree.
struct Count {
  size_t n = 0;
  void Byte(uint8_t) { ++n; }
  void Bytes(const void*, size_t k) { n += k; }
};
struct Put {
  char* p;
  void Byte(uint8_t b) { *p++ = static_cast<char>(b); }
  void Bytes(const void* s, size_t k) {
    std::memcpy(p, s, k);
    p += k;
  }
};

// The table of attribute keys (PackedSpan::kTableKeys). Keys are few and the same in span
// after span (gen_ai.request.model, session.id): they were a third of a packed span's bytes.
class KeyTable {
 public:
  static constexpr uint32_t kMaxKeys = PackedSpan::kTableKeys;
  static constexpr size_t kMaxKeyLength = PackedSpan::kTableKeyLength;

  // Never destroyed (Google style's rule for a static that is not trivially destructible): an
  // engine thread may still pack a span while the process exits.
  static KeyTable& Get() {
    static KeyTable* const table = new KeyTable;
    return *table;
  }

  // The key's number, or -1 when it is written out. Each thread remembers the numbers of the
  // keys it met last, so a key is nearly always found without the table's lock; once the table
  // is full it never changes again and is read without the lock.
  int64_t Number(std::string_view key) {
    if (key.size() > kMaxKeyLength) return -1;
    // Two ways per set: the newest first.
    thread_local Recent recent[kRecent];
    Recent* set = &recent[Slot(key) & ~size_t{1}];
    for (int way = 0; way < 2; ++way) {
      if (set[way].size == key.size() && std::memcmp(set[way].data, key.data(), key.size()) == 0) {
        return set[way].number;
      }
    }
    int64_t number = -1;
    if (full_.load(std::memory_order_acquire)) {
      if (auto it = numbers_.find(key); it != numbers_.end()) number = it->second;
    } else {
      number = Insert(key);
    }
    if (number >= 0) {
      set[1] = set[0];
      set[0] = {keys_[number].data, key.size(), static_cast<uint32_t>(number)};
    }
    return number;
  }

  // Key `n`, which Number returned. The span that holds the number was packed after the key was
  // stored, and reached this thread after that, so the entry is read without the lock.
  std::string_view Key(uint64_t n) const { return {keys_[n].data, keys_[n].size}; }

 private:
  static constexpr size_t kChunkBytes = 16384;
  static constexpr int kRecentBits = 10;
  static constexpr size_t kRecent = size_t{1} << kRecentBits;
  // Plain data, so the entries not used yet are never written (nor resident).
  struct Entry {
    const char* data;
    size_t size;
  };
  struct Recent {
    const char* data = nullptr;
    size_t size = ~size_t{0};  // matches no key
    uint32_t number = 0;
  };
  KeyTable() : keys_(std::make_unique_for_overwrite<Entry[]>(kMaxKeys)) {}

  // A recent-keys slot from the key's length and its first, middle and last 8 bytes.
  static size_t Slot(std::string_view key) {
    uint64_t a = 0, b = 0, c = 0;
    if (key.size() >= 8) {
      std::memcpy(&a, key.data(), 8);
      std::memcpy(&b, key.data() + key.size() / 2 - 4, 8);
      std::memcpy(&c, key.data() + key.size() - 8, 8);
    } else {
      std::memcpy(&a, key.data(), key.size());
    }
    const uint64_t h = ((a * 0x9e3779b97f4a7c15) ^ (b * 0xc2b2ae3d27d4eb4f) ^ (c + key.size())) *
                       0x165667b19e3779f9;
    return static_cast<size_t>(h >> (64 - kRecentBits));
  }

  // With the lock: the key's number, stored if it is new and there is room; -1 when there is
  // none (and from then on the table is full).
  int64_t Insert(std::string_view key) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = numbers_.find(key); it != numbers_.end()) return it->second;
    if (count_ == kMaxKeys) {
      full_.store(true, std::memory_order_release);
      return -1;
    }
    // Stored in chunks that never move: the views into them stay valid.
    if (chunks_.empty() || chunk_used_ + key.size() > kChunkBytes) {
      chunks_.push_back(std::make_unique_for_overwrite<char[]>(kChunkBytes));
      chunk_used_ = 0;
    }
    char* at = chunks_.back().get() + chunk_used_;
    std::memcpy(at, key.data(), key.size());
    chunk_used_ += key.size();
    keys_[count_] = {at, key.size()};
    numbers_.emplace(std::string_view(at, key.size()), count_);
    return count_++;
  }

  std::mutex mu_;
  std::atomic<bool> full_{false};
  absl::flat_hash_map<std::string_view, uint32_t> numbers_;
  std::unique_ptr<Entry[]> keys_;
  uint32_t count_ = 0;
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t chunk_used_ = 0;
};

template <typename Out>
void Varint(Out& o, uint64_t v) {
  while (v >= 0x80) {
    o.Byte(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  o.Byte(static_cast<uint8_t>(v));
}
template <typename Out>
void Str(Out& o, std::string_view s) {
  Varint(o, s.size());
  o.Bytes(s.data(), s.size());
}
template <typename Out, typename T>
void Raw(Out& o, T v) {
  o.Bytes(&v, sizeof v);
}
// A span id as it is held: 16 lowercase hex digits as their value, else the text (worked out
// once for both passes).
struct Id {
  explicit Id(std::string_view id) : text(id), packed(PackHex16(id, value)) {}
  std::string_view text;
  uint64_t value = 0;
  bool packed;
};
template <typename Out>
void PutId(Out& o, const Id& id) {
  if (id.packed) {
    o.Byte(0);
    Raw(o, id.value);
    return;
  }
  Varint(o, id.text.size() + 1);
  o.Bytes(id.text.data(), id.text.size());
}
template <typename Out>
void Value(Out& o, const AttrValue& v) {
  o.Byte(static_cast<uint8_t>(v.kind));
  switch (v.kind) {
    case AttrValue::Kind::kNull: break;
    case AttrValue::Kind::kBool: o.Byte(v.b ? 1 : 0); break;
    case AttrValue::Kind::kNumber: Raw(o, v.n); break;
    case AttrValue::Kind::kString: Str(o, v.s); break;
    case AttrValue::Kind::kArray:
      Varint(o, v.items.size());
      for (const AttrValue& item : v.items) Value(o, item);
      break;
  }
}
// A key's code in the layout.
uint64_t KeyCode(std::string_view key) {
  const int64_t n = KeyTable::Get().Number(key);
  return n >= 0 ? 2 * static_cast<uint64_t>(n) + 1 : 2 * key.size();
}
// `keys` are the attributes' key codes; `at_value(i, o)` is called before the value of
// attribute i is written.
template <typename Out, typename AtValue = void (*)(size_t, const Out&)>
void AttrList(
    Out& o, const Attributes& attrs, const uint64_t* keys,
    AtValue at_value = [](size_t, const Out&) {}) {
  Varint(o, attrs.size());
  for (size_t i = 0; i < attrs.size(); ++i) {
    Varint(o, keys[i]);
    if ((keys[i] & 1) == 0) o.Bytes(attrs[i].first.data(), attrs[i].first.size());
    at_value(i, o);
    Value(o, attrs[i].second);
  }
}

// The canonical fields of a span, in the order of the layout.
std::array<const std::optional<std::string>*, 6> CanonicalOf(const Span& span) {
  return {&span.model,      &span.input,   &span.output,
          &span.session_id, &span.user_id, &span.prompt_version};
}

// Everything before the attributes: `ids` are the span's and its parent's ids, `codes` the
// canonical fields' codes, `resource_at` the attributes' size.
template <typename Out>
void Head(Out& o, const Span& span, const Id (&ids)[2], const uint64_t (&codes)[6],
          uint64_t resource_at) {
  uint8_t flags = 0;
  if (span.start_ns) flags |= kStart;
  if (span.end_ns) flags |= kEnd;
  if (span.input_tokens) flags |= kInputTokens;
  if (span.output_tokens) flags |= kOutputTokens;
  if (span.retry_count) flags |= kRetryCount;
  o.Byte(flags);
  o.Byte(static_cast<uint8_t>(span.status));
  PutId(o, ids[0]);
  PutId(o, ids[1]);
  for (const std::string* s : {&span.name, &span.status_message, &span.kind}) Str(o, *s);
  if (span.start_ns) Raw(o, *span.start_ns);
  if (span.end_ns) Raw(o, *span.end_ns);
  if (span.input_tokens) Raw(o, *span.input_tokens);
  if (span.output_tokens) Raw(o, *span.output_tokens);
  if (span.retry_count) Raw(o, *span.retry_count);
  Varint(o, span.bytes);
  const auto canonical = CanonicalOf(span);
  for (size_t k = 0; k < canonical.size(); ++k) {
    Varint(o, codes[k]);
    if (codes[k] == 1) Str(o, **canonical[k]);
  }
  Varint(o, resource_at);
}

class Reader {
 public:
  explicit Reader(const char* p) : p_(p) {}

  uint8_t Byte() { return static_cast<uint8_t>(*p_++); }
  uint64_t Varint() {
    const uint8_t first = Byte();
    if (first < 0x80) return first;  // most are one byte: lengths, counts and codes
    uint64_t v = first & 0x7f;
    for (int shift = 7;; shift += 7) {
      const uint8_t b = Byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  }
  // The next n bytes.
  std::string_view Take(size_t n) {
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  std::string_view StrView() { return Take(Varint()); }
  std::string_view KeyView() {
    const uint64_t code = Varint();
    if (code & 1) return KeyTable::Get().Key(code >> 1);
    return Take(code >> 1);
  }
  void StrInto(std::string& s) { s.assign(StrView()); }
  // A span id; a packed one is written out into text[0..15].
  std::string_view IdView(char* text) {
    const uint64_t code = Varint();
    if (code == 0) {
      UnpackHex16(Raw<uint64_t>(), text);
      return {text, 16};
    }
    return Take(code - 1);
  }
  // Skips a span id; true when it is empty.
  bool SkipId() {
    const uint64_t code = Varint();
    p_ += code == 0 ? sizeof(uint64_t) : code - 1;
    return code == 1;
  }
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
      key.assign(KeyView());
      ValueInto(value);
    }
  }
  // The canonical fields' codes: a view of each string into `fields` (when given), and where
  // the attributes start and where the resource does.
  struct Lists {
    const char* attributes;
    const char* resource;
  };
  Lists CanonicalFields(std::optional<std::string_view> (*fields)[6] = nullptr) {
    uint64_t codes[6];
    for (size_t k = 0; k < 6; ++k) {
      codes[k] = Varint();
      if (codes[k] == 1) {
        const std::string_view s = StrView();
        if (fields != nullptr) (*fields)[k] = s;
      }
    }
    const uint64_t resource_at = Varint();
    const Lists lists{p_, p_ + resource_at};
    if (fields == nullptr) return lists;
    for (size_t k = 0; k < 6; ++k) {
      if (codes[k] >= 2) (*fields)[k] = Reader(lists.attributes + (codes[k] - 2)).StrView();
    }
    return lists;
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
  // Each canonical field's code: 0 absent, 1 written out, 2 + k for the string value at byte k
  // of the attributes, found by sizing the attributes up to the first string value equal to it.
  const auto canonical = CanonicalOf(span);
  uint64_t codes[6];
  int64_t match[6];
  for (size_t k = 0; k < canonical.size(); ++k) {
    codes[k] = *canonical[k] ? 1 : 0;
    match[k] = -1;
    if (!*canonical[k]) continue;
    for (size_t i = 0; i < span.attributes.size(); ++i) {
      const AttrValue& v = span.attributes[i].second;
      if (v.kind == AttrValue::Kind::kString && v.s == **canonical[k]) {
        match[k] = static_cast<int64_t>(i);
        break;
      }
    }
  }
  // Each key's code, looked up once for both passes.
  thread_local std::vector<uint64_t> keys;
  keys.clear();
  for (const auto& attr : span.attributes) keys.push_back(KeyCode(attr.first));
  for (const auto& attr : span.resource) keys.push_back(KeyCode(attr.first));
  const uint64_t* attribute_keys = keys.data();
  const uint64_t* resource_keys = keys.data() + span.attributes.size();
  Count attrs;
  AttrList(attrs, span.attributes, attribute_keys, [&](size_t i, const Count& at) {
    for (size_t k = 0; k < canonical.size(); ++k) {
      if (match[k] == static_cast<int64_t>(i)) codes[k] = 2 + at.n + 1;  // after the kind
    }
  });
  const Id ids[2] = {Id(span.span_id), Id(span.parent_span_id)};
  Count all;
  Head(all, span, ids, codes, attrs.n);
  all.n += attrs.n;
  AttrList(all, span.resource, resource_keys);
  size_ = static_cast<uint32_t>(all.n);
  data_ = std::make_unique_for_overwrite<char[]>(size_);
  Put put{data_.get()};
  Head(put, span, ids, codes, attrs.n);
  AttrList(put, span.attributes, attribute_keys);
  AttrList(put, span.resource, resource_keys);
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
  char text[16];
  span.span_id.assign(r.IdView(text));
  span.parent_span_id.assign(r.IdView(text));
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
  std::optional<std::string_view> canonical[6];
  const Reader::Lists lists = r.CanonicalFields(&canonical);
  Reader(lists.attributes).AttrsInto(span.attributes);
  Reader(lists.resource).AttrsInto(span.resource);
  std::optional<std::string>* fields[] = {&span.model,      &span.input,   &span.output,
                                          &span.session_id, &span.user_id, &span.prompt_version};
  for (size_t k = 0; k < std::size(fields); ++k) {
    if (!canonical[k]) {
      fields[k]->reset();
    } else if (*fields[k]) {
      (*fields[k])->assign(*canonical[k]);  // its storage reused
    } else {
      fields[k]->emplace(*canonical[k]);
    }
  }
}

PackedSpan::Fields PackedSpan::Peek() const {
  Reader r(data_.get());
  Fields f;
  const uint8_t flags = r.Byte();
  f.status = static_cast<SpanStatus>(r.Byte());
  f.ids_ = r.position();
  r.SkipId();
  f.root = r.SkipId();
  f.name = r.StrView();
  f.status_message = r.StrView();
  f.kind = r.StrView();
  if (flags & kStart) f.start_ns = r.Raw<int64_t>();
  if (flags & kEnd) f.end_ns = r.Raw<int64_t>();
  if (flags & kInputTokens) f.input_tokens = r.Raw<double>();
  if (flags & kOutputTokens) f.output_tokens = r.Raw<double>();
  if (flags & kRetryCount) f.retry_count = r.Raw<double>();
  r.Varint();  // bytes
  f.lists_ = r.position();
  return f;
}

std::string_view PackedSpan::Fields::span_id() const { return Reader(ids_).IdView(id_text_[0]); }

std::string_view PackedSpan::Fields::parent_span_id() const {
  Reader r(ids_);
  r.SkipId();
  return r.IdView(id_text_[1]);
}

std::optional<std::string_view> PackedSpan::Fields::canonical(size_t k) const {
  std::optional<std::string_view> all[6];
  Canonical(all);
  return all[k];
}

void PackedSpan::Fields::Canonical(std::optional<std::string_view> (&out)[6]) const {
  std::fill(std::begin(out), std::end(out), std::nullopt);
  Reader(lists_).CanonicalFields(&out);
}

PackedSpan::Attrs PackedSpan::Fields::attributes() const {
  return ListAt(Reader(lists_).CanonicalFields().attributes);
}

PackedSpan::Attrs PackedSpan::Fields::resource() const {
  return ListAt(Reader(lists_).CanonicalFields().resource);
}

PackedSpan::Attrs PackedSpan::ListAt(const char* at) {
  Reader list(at);
  Attrs attrs;
  attrs.count_ = list.Varint();
  attrs.data_ = list.position();
  return attrs;
}

std::optional<int64_t> PackedSpan::start_ns() const {
  Reader r(data_.get());
  const uint8_t flags = r.Byte();
  r.Byte();                                 // status
  r.SkipId();                               // span id
  r.SkipId();                               // parent
  for (int i = 0; i < 3; ++i) r.StrView();  // name, status message, kind
  if (flags & kStart) return r.Raw<int64_t>();
  return std::nullopt;
}

void PackedSpan::Attrs::Visit(Visitor& visitor) const {
  Reader r(data_);
  for (uint64_t n = count_; n > 0; --n) {
    visitor.Key(r.KeyView());
    r.VisitValue(visitor);
  }
}

bool PackedSpan::Attrs::Find(std::string_view key, AttrValue& out) const {
  Reader r(data_);
  for (uint64_t n = count_; n > 0; --n) {
    if (r.KeyView() == key) {
      r.ValueInto(out);
      return true;
    }
    r.SkipValue();
  }
  return false;
}

}  // namespace triaged
