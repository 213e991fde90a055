// The one-pass JSON decoder (rules/json_onepass.h): a rapidjson::Reader handler that builds spans
// and annotations as it walks, and the reading of the members it keeps.
#include "rules/json_onepass.h"

#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "rules/decode_common.h"

namespace triaged::decode::onepass {
namespace {

// A JSON value as the walk keeps it: scalars by value (strings as views into the buffer),
// objects and arrays as their compact JSON, objects also with their direct members.
struct JVal {
  enum Kind : uint8_t { kNull, kBool, kNeg, kPos, kDouble, kString, kObject, kArray };
  Kind kind = kNull;
  bool b = false;
  int64_t i = 0;   // kNeg
  uint64_t u = 0;  // kPos
  double d = 0;    // kDouble
  std::string_view s;
  uint32_t json_pos = 0, json_len = 0;  // compact JSON of an object or array (captured ones)
  uint32_t sub_begin = 0, sub_end = 0;  // direct members of a captured object
  bool captured = false;

  bool IsNull() const { return kind == kNull; }
  bool IsBool() const { return kind == kBool; }
  bool IsString() const { return kind == kString; }
  bool IsObject() const { return kind == kObject; }
  bool IsNumber() const { return kind == kNeg || kind == kPos || kind == kDouble; }
  // As rapidjson::Value's, which tell by the value, not by how it was written.
  bool IsInt() const {
    return (kind == kNeg && i >= std::numeric_limits<int32_t>::min()) ||
           (kind == kPos && u <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max()));
  }
  bool IsInt64() const {
    return kind == kNeg ||
           (kind == kPos && u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  }
  bool IsUint64() const { return kind == kPos; }
  int64_t GetInt64() const { return kind == kNeg ? i : static_cast<int64_t>(u); }
  double GetDouble() const {
    return kind == kNeg ? static_cast<double>(i) : kind == kPos ? static_cast<double>(u) : d;
  }
};

struct Member {
  std::string_view key;
  JVal v;
};

// A span event, kept until its span ends (its annotation needs the span's ids).
struct EventData {
  bool eval = false;  // named gen_ai.evaluation.result
  JVal time;
  bool time_container = false;
  bool attrs_not_array = false;
  Attributes attrs;
};

enum class FrameType : uint8_t {
  kTop,        // the message object
  kFlatObj,    // a native attribute object (flattened into dotted keys)
  kFlatArr,    // an array in a native attribute object
  kRsList,     // resourceSpans
  kRs,         // a ResourceSpans
  kResource,   // its resource
  kScopeList,  // scopeSpans / instrumentationLibrarySpans
  kScope,      // a ScopeSpans
  kSpanList,   // its spans
  kSpan,       // a Span
  kStatus,     // its status
  kEvents,     // its events
  kEvent,      // one event
  kKvList,     // a list of KeyValue
  kKv,         // a KeyValue
  kAny,        // an AnyValue
  kArrObj,     // an ArrayValue
  kArrValues,  // its values
  kKvlistObj,  // a KeyValueList
};

struct Frame {
  FrameType type = FrameType::kTop;
  uint32_t seen = 0;  // known keys met (a second one gives up)
  int key = -1;       // the known key of the member being read (-1: not one we read)
  std::string_view raw_key;
  std::string name;           // flattened key (kFlatObj prefix, kFlatArr / kKv key, kKvList prefix)
  bool has_key = false;       // kKv: its key was read
  bool kvlist = false;        // kKv: its value is a kvlistValue
  bool has_value = false;     // kAny: a member was taken
  Attributes* out = nullptr;  // kFlatObj / kFlatArr / kKvList / kKv: where attributes go
  AttrValue val;
  std::vector<AttrValue> items;
};

// Known member names, each a bit of Frame::seen.
enum Key : int {
  kKeyResourceSpans,
  kKeyAttributes,
  kKeyResource,
  kKeyScopeSpans,
  kKeyIls,
  kKeySpans,
  kKeyTraceId,
  kKeySpanId,
  kKeyParentSpanId,
  kKeyName,
  kKeyStart,
  kKeyEnd,
  kKeyStatus,
  kKeyEvents,
  kKeyCode,
  kKeyMessage,
  kKeyTime,
  kKeyKey,
  kKeyValue,
  kKeyStringValue,
  kKeyBoolValue,
  kKeyIntValue,
  kKeyDoubleValue,
  kKeyArrayValue,
  kKeyBytesValue,
  kKeyKvlistValue,
  kKeyValues,
};

// Appends an attribute. A list starts with room for 8, so a span's attributes are not moved
// from one buffer to the next as they arrive (1, 2, 4, 8).
// A new attribute at the end of `out`: an empty key and a null value, to be set in place.
std::pair<std::string, AttrValue>& NewAttr(Attributes& out) {
  if (out.capacity() == 0) out.reserve(8);
  return out.emplace_back();
}

void AddAttr(Attributes& out, std::string key, AttrValue value) {
  auto& [k, v] = NewAttr(out);
  k = std::move(key);
  v = std::move(value);
}

// Whether `k` is the literal `lit`: a compare of constant length, which the compiler writes out
// in place (KeyOf's chains of string_view == called memcmp for each).
template <size_t N>
bool Is(std::string_view k, const char (&lit)[N]) {
  return k.size() == N - 1 && std::memcmp(k.data(), lit, N - 1) == 0;
}

int KeyOf(FrameType t, std::string_view k) {
  switch (t) {
    case FrameType::kTop:
      if (Is(k, "resourceSpans")) return kKeyResourceSpans;
      if (Is(k, "attributes")) return kKeyAttributes;
      if (Is(k, "resource")) return kKeyResource;
      return -1;
    case FrameType::kRs:
      if (Is(k, "resource")) return kKeyResource;
      if (Is(k, "scopeSpans")) return kKeyScopeSpans;
      if (Is(k, "instrumentationLibrarySpans")) return kKeyIls;
      return -1;
    case FrameType::kResource: return Is(k, "attributes") ? kKeyAttributes : -1;
    case FrameType::kScope: return Is(k, "spans") ? kKeySpans : -1;
    case FrameType::kSpan:
      if (Is(k, "traceId")) return kKeyTraceId;
      if (Is(k, "spanId")) return kKeySpanId;
      if (Is(k, "parentSpanId")) return kKeyParentSpanId;
      if (Is(k, "name")) return kKeyName;
      if (Is(k, "startTimeUnixNano")) return kKeyStart;
      if (Is(k, "endTimeUnixNano")) return kKeyEnd;
      if (Is(k, "status")) return kKeyStatus;
      if (Is(k, "attributes")) return kKeyAttributes;
      if (Is(k, "events")) return kKeyEvents;
      return -1;
    case FrameType::kStatus:
      if (Is(k, "code")) return kKeyCode;
      if (Is(k, "message")) return kKeyMessage;
      return -1;
    case FrameType::kEvent:
      if (Is(k, "name")) return kKeyName;
      if (Is(k, "timeUnixNano")) return kKeyTime;
      if (Is(k, "attributes")) return kKeyAttributes;
      return -1;
    case FrameType::kKv:
      if (Is(k, "key")) return kKeyKey;
      if (Is(k, "value")) return kKeyValue;
      return -1;
    case FrameType::kAny:
      if (Is(k, "stringValue")) return kKeyStringValue;
      if (Is(k, "boolValue")) return kKeyBoolValue;
      if (Is(k, "intValue")) return kKeyIntValue;
      if (Is(k, "doubleValue")) return kKeyDoubleValue;
      if (Is(k, "arrayValue")) return kKeyArrayValue;
      if (Is(k, "bytesValue")) return kKeyBytesValue;
      if (Is(k, "kvlistValue")) return kKeyKvlistValue;
      return -1;
    case FrameType::kArrObj:
    case FrameType::kKvlistObj: return Is(k, "values") ? kKeyValues : -1;
    default: return -1;
  }
}

// Sets `out`, a null value, to the attribute value of `v`.
void SetAttrOf(const JVal& v, AttrValue& out) {
  switch (v.kind) {
    case JVal::kBool:
      out.kind = AttrValue::Kind::kBool;
      out.b = v.b;
      break;
    case JVal::kNeg:
    case JVal::kPos:
    case JVal::kDouble:
      out.kind = AttrValue::Kind::kNumber;
      out.n = v.GetDouble();
      break;
    case JVal::kString:
      out.kind = AttrValue::Kind::kString;
      out.s.assign(v.s);
      break;
    default: break;  // null
  }
}

AttrValue AttrOf(const JVal& v) {
  AttrValue a;
  SetAttrOf(v, a);
  return a;
}

// Unix nanoseconds as ReadNanos reads them; false where ReadNanos refuses.
bool NanosOf(const JVal& v, std::optional<int64_t>& out) {
  out.reset();
  if (v.IsNull()) return true;
  int64_t n = 0;
  if (v.IsNumber()) {
    if (!v.IsInt64() || v.GetInt64() < 0) return false;
    n = v.GetInt64();
  } else if (v.IsString()) {
    const std::string_view s = v.s;
    uint64_t x = 0;
    const char* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(s.data(), end, x);
    if (s.empty() || s[0] < '0' || s[0] > '9' || ec != std::errc() || ptr != end ||
        x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return false;
    }
    n = static_cast<int64_t>(x);
  } else {
    return false;
  }
  if (!CheckTimeRange(n, {}).ok()) return false;
  out = n;
  return true;
}

// Status as ParseStatusCode reads it.
bool StatusOf(const JVal& v, SpanStatus& out) {
  if (v.IsInt()) return decode::StatusFromCode(v.GetInt64(), out);
  if (!v.IsString()) return false;
  return decode::StatusFromName(v.s, out);
}

// Gives up on the walk (the document path decodes the message).
#define ONEPASS_REQUIRE(cond)  \
  do {                         \
    if (!(cond)) return false; \
  } while (0)

class Walker {
 public:
  void Reset() {
    done_ = false;
    depth_ = 0;
    n_ = 0;
    skip_ = 0;
    cap_ = 0;
    top_.clear();
    sub_.clear();
    json_.clear();
    top_attrs_.clear();
    top_resource_.clear();
    otlp_ = false;
    msg_ = DecodedMessage{};
    rs_first_ = 0;
    rs_resource_.clear();
    events_used_ = 0;
  }

  // The walk of `buf` (`size` bytes, NUL-terminated, modified in place); false to give up.
  bool Walk(char* buf, size_t size, const DecodeLimits& limits) {
    limits_ = limits;
    Reset();
    return WalkInsitu(buf, size, *this) && done_;
  }

  // --- the SAX handler
  bool Null() { return Scalar(JVal{}); }
  bool Bool(bool b) {
    JVal v;
    v.kind = JVal::kBool;
    v.b = b;
    return Scalar(v);
  }
  bool Int(int i) { return Int64(i); }
  bool Int64(int64_t i) {
    JVal v;
    if (i >= 0) {
      v.kind = JVal::kPos;
      v.u = static_cast<uint64_t>(i);
    } else {
      v.kind = JVal::kNeg;
      v.i = i;
    }
    return Scalar(v);
  }
  bool Uint(unsigned u) { return Uint64(u); }
  bool Uint64(uint64_t u) {
    JVal v;
    v.kind = JVal::kPos;
    v.u = u;
    return Scalar(v);
  }
  bool Double(double d) {
    JVal v;
    v.kind = JVal::kDouble;
    v.d = d;
    return Scalar(v);
  }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return false; }
  bool String(const char* s, rapidjson::SizeType len, bool) {
    JVal v;
    v.kind = JVal::kString;
    v.s = std::string_view(s, len);
    return Scalar(v);
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    const std::string_view k(s, len);
    if (skip_ > 0) return true;
    if (cap_ > 0) {
      cap_writer_.Key(s, len);
      if (cap_ == 1) cap_key_ = k;
      return true;
    }
    Frame& f = frames_[n_ - 1];
    f.raw_key = k;
    f.key = KeyOf(f.type, k);
    if (f.key >= 0) {
      const uint32_t bit = 1u << f.key;
      // A second member of a name the walk reads: the document reads the first only.
      if (f.type != FrameType::kTop && (f.seen & bit) != 0) return false;
      f.seen |= bit;
    }
    return true;
  }
  bool StartObject() { return Start(true); }
  bool StartArray() { return Start(false); }
  bool EndObject(rapidjson::SizeType) { return End(true); }
  bool EndArray(rapidjson::SizeType) { return End(false); }

  // --- after the walk
  bool otlp() const { return otlp_; }
  DecodedMessage& msg() { return msg_; }
  const std::vector<Member>& top() const { return top_; }
  const std::vector<Member>& sub() const { return sub_; }
  std::string_view Json(const JVal& v) const { return {json_.data() + v.json_pos, v.json_len}; }
  Attributes& top_attrs() { return top_attrs_; }
  Attributes& top_resource() { return top_resource_; }

 private:
  Frame& Push(FrameType t) {
    if (n_ == frames_.size()) frames_.emplace_back();
    Frame& f = frames_[n_++];
    f.type = t;
    f.seen = 0;
    f.key = -1;
    f.raw_key = {};
    f.name.clear();
    f.has_key = f.kvlist = f.has_value = false;
    f.out = nullptr;
    // Reset in place: a frame is pushed for every object and array of the message.
    f.val.kind = AttrValue::Kind::kNull;
    f.val.b = false;
    f.val.n = 0;
    f.val.s.clear();
    f.val.items.clear();
    f.items.clear();
    return f;
  }
  Frame& TopFrame() { return frames_[n_ - 1]; }
  Frame& Parent() { return frames_[n_ - 2]; }

  bool CheckCount(const Attributes& attrs) const { return attrs.size() <= limits_.max_attributes; }

  // A top-level member (first one of its name wins when read: see Find).
  void AddTop(std::string_view key, const JVal& v) { top_.push_back(Member{key, v}); }

  // Starts capturing the compact JSON of an object or array value.
  void StartCapture(bool object, int dest) {
    cap_buf_.Clear();
    cap_writer_.Reset(cap_buf_);
    cap_ = 1;
    cap_object_ = object;
    cap_dest_ = dest;
    cap_sub_begin_ = static_cast<uint32_t>(sub_.size());
    if (object) {
      cap_writer_.StartObject();
    } else {
      cap_writer_.StartArray();
    }
  }

  bool CaptureScalar(const JVal& v) {
    switch (v.kind) {
      case JVal::kNull: cap_writer_.Null(); break;
      case JVal::kBool: cap_writer_.Bool(v.b); break;
      case JVal::kNeg: cap_writer_.Int64(v.i); break;
      case JVal::kPos: cap_writer_.Uint64(v.u); break;
      case JVal::kDouble: cap_writer_.Double(v.d); break;
      case JVal::kString:
        cap_writer_.String(v.s.data(), static_cast<rapidjson::SizeType>(v.s.size()));
        break;
      default: break;
    }
    if (cap_ == 1 && cap_object_) sub_.push_back(Member{cap_key_, v});
    return true;
  }

  // The captured value is complete.
  bool EndCapture() {
    const std::string_view text(cap_buf_.GetString(), cap_buf_.GetSize());
    if (cap_dest_ == kCapTop) {
      JVal v;
      v.kind = cap_object_ ? JVal::kObject : JVal::kArray;
      v.captured = true;
      v.json_pos = static_cast<uint32_t>(json_.size());
      v.json_len = static_cast<uint32_t>(text.size());
      json_.append(text);
      v.sub_begin = cap_sub_begin_;
      v.sub_end = static_cast<uint32_t>(sub_.size());
      AddTop(cap_top_key_, v);
    } else {  // an object in an array of a native attribute: its JSON text
      TopFrame().items.push_back(AttrValue::String(std::string(text)));
    }
    return true;
  }

  bool Scalar(const JVal& v) {
    if (skip_ > 0) return true;
    if (cap_ > 0) return CaptureScalar(v);
    ONEPASS_REQUIRE(n_ > 0);  // the message is not an object
    Frame& f = TopFrame();
    switch (f.type) {
      case FrameType::kTop:
        if (f.key == kKeyResourceSpans) return false;  // null or not an array
        if (f.key == kKeyAttributes || f.key == kKeyResource) ONEPASS_REQUIRE(!HasTop(f.raw_key));
        AddTop(f.raw_key, v);
        return true;
      case FrameType::kFlatObj: {
        auto& [key, value] = NewAttr(*f.out);
        if (!f.name.empty()) key.assign(f.name).append(".");
        key.append(f.raw_key);
        SetAttrOf(v, value);
        return CheckCount(*f.out);
      }
      case FrameType::kFlatArr: f.items.push_back(AttrOf(v)); return true;
      case FrameType::kRs:
      case FrameType::kResource:
      case FrameType::kScope:
      case FrameType::kKvlistObj:
      case FrameType::kArrObj: return f.key < 0 || v.IsNull();
      case FrameType::kSpan: return SpanScalar(f, v);
      case FrameType::kStatus:
        if (f.key == kKeyCode) return v.IsNull() || StatusOf(v, span_.status);
        if (f.key == kKeyMessage) {
          if (v.IsNull()) return true;
          ONEPASS_REQUIRE(v.IsString());
          span_.status_message.assign(v.s);
        }
        return true;
      case FrameType::kEvent: {
        EventData& e = events_[events_used_ - 1];
        if (f.key == kKeyName) e.eval = v.IsString() && v.s == decode::kEvaluationEvent;
        if (f.key == kKeyTime) e.time = v;
        if (f.key == kKeyAttributes && !v.IsNull()) e.attrs_not_array = true;
        return true;
      }
      case FrameType::kKv:
        if (f.key == kKeyKey) {
          ONEPASS_REQUIRE(v.IsString());
          const Frame& list = Parent();
          if (list.name.empty()) {
            f.name.assign(v.s);
          } else {
            f.name.assign(list.name).append(".").append(v.s);
          }
          f.has_key = true;
        } else if (f.key == kKeyValue) {
          ONEPASS_REQUIRE(v.IsNull());
        }
        return true;
      case FrameType::kAny: return AnyScalar(f, v);
      default: return false;  // a scalar where a list wants objects
    }
  }

  bool SpanScalar(Frame& f, const JVal& v) {
    switch (f.key) {
      case kKeyTraceId:
      case kKeySpanId:
      case kKeyParentSpanId: {
        if (v.IsNull()) return true;
        ONEPASS_REQUIRE(v.IsString());
        std::string& out = f.key == kKeyTraceId  ? span_.trace_id
                           : f.key == kKeySpanId ? span_.span_id
                                                 : span_.parent_span_id;
        if (v.s.empty()) return true;  // missing: told at the span's end
        return NormalizeId(v.s, out);
      }
      case kKeyName:
        if (v.IsNull()) return true;
        ONEPASS_REQUIRE(v.IsString());
        span_.name.assign(v.s);
        return true;
      case kKeyStart: return NanosOf(v, span_.start_ns);
      case kKeyEnd: return NanosOf(v, span_.end_ns);
      case kKeyStatus:
      case kKeyAttributes:
      case kKeyEvents: return v.IsNull();
      default: return true;
    }
  }

  bool AnyScalar(Frame& f, const JVal& v) {
    if (f.key < 0 || v.IsNull()) return true;
    // Two members: the document path takes them by precedence.
    ONEPASS_REQUIRE(!f.has_value);
    f.has_value = true;
    switch (f.key) {
      case kKeyStringValue:
      case kKeyBytesValue:
        ONEPASS_REQUIRE(v.IsString());
        f.val = AttrValue::String(std::string(v.s));
        return true;
      case kKeyBoolValue:
        ONEPASS_REQUIRE(v.IsBool());
        f.val = AttrValue::Bool(v.b);
        return true;
      case kKeyIntValue:
        if (v.IsInt64() || v.IsUint64()) {
          f.val = AttrValue::Number(v.GetDouble());
          return true;
        } else if (v.IsString()) {
          const std::string_view s = v.s;
          int64_t n = 0;
          const char* end = s.data() + s.size();
          auto [ptr, ec] = std::from_chars(s.data(), end, n);
          ONEPASS_REQUIRE(!s.empty() && ec == std::errc() && ptr == end);
          f.val = AttrValue::Number(static_cast<double>(n));
          return true;
        }
        return false;
      case kKeyDoubleValue:
        if (v.IsNumber()) {
          f.val = AttrValue::Number(v.GetDouble());
          return true;
        } else if (v.IsString()) {
          const std::string_view s = v.s;
          double n = 0;
          const char* end = s.data() + s.size();
          auto [ptr, ec] = std::from_chars(s.data(), end, n);
          if (!s.empty() && ec == std::errc() && ptr == end && std::isfinite(n)) {
            f.val = AttrValue::Number(n);
          } else if (s == "NaN" || s == "Infinity" || s == "-Infinity") {
            f.val = AttrValue::String(std::string(s));
          } else {
            return false;
          }
          return true;
        }
        return false;
      default: return false;  // arrayValue, kvlistValue: objects
    }
  }

  bool HasTop(std::string_view key) const {
    for (const Member& m : top_) {
      if (m.key == key) return true;
    }
    return false;
  }

  bool Start(bool object) {
    // The document path's bound (DepthWithin): deeper is too_deep, which it reports.
    ONEPASS_REQUIRE(++depth_ <= limits_.max_depth);
    if (skip_ > 0) {
      ++skip_;
      return true;
    }
    if (cap_ > 0) {
      ++cap_;
      if (cap_ == 2 && cap_object_) {
        JVal v;
        v.kind = object ? JVal::kObject : JVal::kArray;
        sub_.push_back(Member{cap_key_, v});
      }
      return object ? cap_writer_.StartObject() : cap_writer_.StartArray();
    }
    if (n_ == 0) {
      ONEPASS_REQUIRE(object && !done_);  // the message is an object
      Push(FrameType::kTop);
      return true;
    }
    Frame& f = TopFrame();
    const int key = f.key;
    switch (f.type) {
      case FrameType::kTop:
        if (key == kKeyResourceSpans) {
          ONEPASS_REQUIRE(!object && !otlp_);
          otlp_ = true;
          JVal v;
          v.kind = JVal::kArray;
          AddTop(f.raw_key, v);
          Push(FrameType::kRsList);
          return true;
        }
        if ((key == kKeyAttributes || key == kKeyResource) && object) {
          ONEPASS_REQUIRE(!HasTop(f.raw_key));
          JVal v;
          v.kind = JVal::kObject;
          AddTop(f.raw_key, v);
          Frame& flat = Push(FrameType::kFlatObj);
          flat.out = key == kKeyAttributes ? &top_attrs_ : &top_resource_;
          return true;
        }
        if (key == kKeyAttributes || key == kKeyResource) ONEPASS_REQUIRE(!HasTop(f.raw_key));
        cap_top_key_ = f.raw_key;
        StartCapture(object, kCapTop);
        return true;
      case FrameType::kFlatObj: {
        std::string key_name =
            f.name.empty() ? std::string(f.raw_key) : f.name + "." + std::string(f.raw_key);
        Attributes* out = f.out;
        Frame& child = Push(object ? FrameType::kFlatObj : FrameType::kFlatArr);
        child.name = std::move(key_name);
        child.out = out;
        return true;
      }
      case FrameType::kFlatArr:
        if (object) {
          StartCapture(true, kCapArrayItem);
          return true;
        }
        Push(FrameType::kFlatArr);
        return true;
      case FrameType::kRsList:
        ONEPASS_REQUIRE(object);
        rs_first_ = msg_.spans.size();
        rs_resource_.clear();
        Push(FrameType::kRs);
        return true;
      case FrameType::kRs:
        if (key == kKeyResource) {
          ONEPASS_REQUIRE(object);
          Push(FrameType::kResource);
          return true;
        }
        if (key == kKeyScopeSpans || key == kKeyIls) {
          // Both in one ResourceSpans: the document path reads scopeSpans first.
          ONEPASS_REQUIRE(!object && !((f.seen >> kKeyScopeSpans) & (f.seen >> kKeyIls) & 1));
          Push(FrameType::kScopeList);
          return true;
        }
        return Skip();
      case FrameType::kResource:
        if (key == kKeyAttributes) {
          ONEPASS_REQUIRE(!object);
          Push(FrameType::kKvList).out = &rs_resource_;
          return true;
        }
        return Skip();
      case FrameType::kScopeList:
        ONEPASS_REQUIRE(object);
        Push(FrameType::kScope);
        return true;
      case FrameType::kScope:
        if (key == kKeySpans) {
          ONEPASS_REQUIRE(!object);
          Push(FrameType::kSpanList);
          return true;
        }
        return Skip();
      case FrameType::kSpanList:
        ONEPASS_REQUIRE(object);
        span_ = Span{};
        events_used_ = 0;
        Push(FrameType::kSpan);
        return true;
      case FrameType::kSpan:
        switch (key) {
          case kKeyStatus:
            ONEPASS_REQUIRE(object);
            Push(FrameType::kStatus);
            return true;
          case kKeyAttributes:
            ONEPASS_REQUIRE(!object);
            Push(FrameType::kKvList).out = &span_.attributes;
            return true;
          case kKeyEvents:
            ONEPASS_REQUIRE(!object);
            Push(FrameType::kEvents);
            return true;
          case -1: return Skip();
          default: return false;  // an id, name or time that is not a scalar
        }
      case FrameType::kStatus: ONEPASS_REQUIRE(key < 0); return Skip();
      case FrameType::kEvents: {
        ONEPASS_REQUIRE(object);
        if (events_used_ == events_.size()) events_.emplace_back();
        EventData& e = events_[events_used_++];
        e.eval = false;
        e.time = JVal{};
        e.time_container = e.attrs_not_array = false;
        e.attrs.clear();
        Push(FrameType::kEvent);
        return true;
      }
      case FrameType::kEvent: {
        EventData& e = events_[events_used_ - 1];
        if (key == kKeyAttributes && !object) {
          Push(FrameType::kKvList).out = &e.attrs;
          return true;
        }
        if (key == kKeyName) e.eval = false;
        if (key == kKeyTime) e.time_container = true;
        if (key == kKeyAttributes) e.attrs_not_array = true;
        return Skip();
      }
      case FrameType::kKvList: {
        ONEPASS_REQUIRE(object);
        Attributes* out = f.out;
        Push(FrameType::kKv).out = out;
        return true;
      }
      case FrameType::kKv:
        if (key == kKeyValue) {
          ONEPASS_REQUIRE(object && f.has_key);  // a value before its key: not read here
          Push(FrameType::kAny);
          return true;
        }
        ONEPASS_REQUIRE(key < 0);
        return Skip();
      case FrameType::kAny:
        if (key < 0) return Skip();
        ONEPASS_REQUIRE(object && !f.has_value);
        f.has_value = true;
        if (key == kKeyArrayValue) {
          Push(FrameType::kArrObj);
          return true;
        }
        if (key == kKeyKvlistValue && Parent().type == FrameType::kKv) {
          Frame& kv = Parent();
          kv.kvlist = true;
          Attributes* out = kv.out;
          Push(FrameType::kKvlistObj).out = out;
          return true;
        }
        return false;  // kvlistValue in an array, or an object where a scalar belongs
      case FrameType::kArrObj:
        if (key == kKeyValues) {
          ONEPASS_REQUIRE(!object);
          Push(FrameType::kArrValues);
          return true;
        }
        return Skip();
      case FrameType::kArrValues:
        ONEPASS_REQUIRE(object);
        Push(FrameType::kAny);
        return true;
      case FrameType::kKvlistObj:
        if (key == kKeyValues) {
          ONEPASS_REQUIRE(!object);
          // The prefix of the nested keys: the KeyValue's key (two frames up).
          const std::string prefix = frames_[n_ - 3].name;
          Attributes* out = f.out;
          Frame& list = Push(FrameType::kKvList);
          list.out = out;
          list.name = prefix;
          return true;
        }
        return Skip();
    }
    return false;
  }

  // A member the walk does not read: its value is skipped (the document path never looks).
  bool Skip() {
    skip_ = 1;
    return true;
  }

  bool End(bool object) {
    --depth_;
    if (skip_ > 0) {
      --skip_;
      return true;
    }
    if (cap_ > 0) {
      if (object) {
        cap_writer_.EndObject();
      } else {
        cap_writer_.EndArray();
      }
      if (--cap_ == 0) return EndCapture();
      return true;
    }
    Frame& f = TopFrame();
    switch (f.type) {
      case FrameType::kTop: done_ = true; break;
      case FrameType::kFlatArr: {
        AttrValue array = AttrValue::Array(std::move(f.items));
        f.items = {};
        Frame& parent = Parent();
        if (parent.type == FrameType::kFlatArr) {
          parent.items.push_back(std::move(array));
        } else {
          AddAttr(*f.out, std::move(f.name), std::move(array));
          f.name = {};
          ONEPASS_REQUIRE(CheckCount(*f.out));
        }
        break;
      }
      case FrameType::kRs:
        // The resource may come after the spans: they take it once the resourceSpans ends.
        for (size_t i = rs_first_; i < msg_.spans.size(); ++i) {
          decode::FinishOtlpSpan(msg_.spans[i], rs_resource_);
        }
        break;
      case FrameType::kSpan: ONEPASS_REQUIRE(EndSpan()); break;
      case FrameType::kKv:
        ONEPASS_REQUIRE(f.has_key);
        if (!f.kvlist) {
          AddAttr(*f.out, std::move(f.name), std::move(f.val));
          f.name = {};
          ONEPASS_REQUIRE(CheckCount(*f.out));
        }
        break;
      case FrameType::kAny: {
        Frame& parent = Parent();
        if (parent.type == FrameType::kKv) {
          parent.val = std::move(f.val);
        } else {
          parent.items.push_back(std::move(f.val));
        }
        break;
      }
      case FrameType::kArrObj: {
        Frame& any = Parent();
        any.val = AttrValue::Array(std::move(f.items));
        f.items = {};
        break;
      }
      case FrameType::kArrValues: {
        Frame& arr = Parent();
        arr.items = std::move(f.items);
        f.items = {};
        break;
      }
      default: break;
    }
    --n_;
    if (n_ == 0) done_ = true;
    return true;
  }

  bool EndSpan() {
    ONEPASS_REQUIRE(!span_.trace_id.empty() && !span_.span_id.empty());
    ONEPASS_REQUIRE(!(span_.start_ns && span_.end_ns && *span_.end_ns < *span_.start_ns));
    for (size_t i = 0; i < events_used_; ++i) {
      EventData& e = events_[i];
      if (!e.eval) continue;
      ONEPASS_REQUIRE(!e.time_container && !e.attrs_not_array);
      std::optional<int64_t> time;
      ONEPASS_REQUIRE(NanosOf(e.time, time));
      Annotation a;
      ONEPASS_REQUIRE(decode::EvaluationAnnotation(span_, time, e.attrs, {}, a).ok());
      msg_.annotations.push_back(std::move(a));
    }
    msg_.spans.push_back(std::move(span_));
    return true;
  }

  static constexpr int kCapTop = 0;
  static constexpr int kCapArrayItem = 1;

  DecodeLimits limits_;
  int depth_ = 0;
  size_t n_ = 0;  // frames in use
  std::vector<Frame> frames_;
  int skip_ = 0;
  int cap_ = 0;
  bool cap_object_ = false;
  int cap_dest_ = kCapTop;
  std::string_view cap_key_, cap_top_key_;
  uint32_t cap_sub_begin_ = 0;
  rapidjson::StringBuffer cap_buf_;
  rapidjson::Writer<rapidjson::StringBuffer> cap_writer_;
  bool done_ = false;

  std::vector<Member> top_, sub_;
  std::string json_;
  Attributes top_attrs_, top_resource_;
  bool otlp_ = false;
  DecodedMessage msg_;
  size_t rs_first_ = 0;  // the first span of the resourceSpans being walked
  Attributes rs_resource_;
  Span span_;
  std::vector<EventData> events_;
  size_t events_used_ = 0;
};

// The members of an object the walk kept: the top level, or a captured object's direct ones.
class Obj {
 public:
  Obj(const Member* begin, const Member* end) : begin_(begin), end_(end) {}
  // The first member named `key`, as FindMember finds it; null counts as absent (as on the
  // document path).
  const JVal* Find(std::string_view key) const {
    for (const Member* m = begin_; m != end_; ++m) {
      if (m->key == key) return m->v.IsNull() ? nullptr : &m->v;
    }
    return nullptr;
  }
  bool Has(std::string_view key) const {
    for (const Member* m = begin_; m != end_; ++m) {
      if (m->key == key) return true;
    }
    return false;
  }
  size_t size() const { return static_cast<size_t>(end_ - begin_); }
  const Member* begin() const { return begin_; }

 private:
  const Member* begin_;
  const Member* end_;
};

// The decoding of the kept members into an annotation or a native span. Every check of the
// document path is made; where that path would refuse, this one gives up (false), so that the
// document path reports the error.
class Fields {
 public:
  explicit Fields(Walker& w) : w_(w) {}

  Obj Top() const { return {w_.top().data(), w_.top().data() + w_.top().size()}; }
  Obj Sub(const JVal& v) const {
    return {w_.sub().data() + v.sub_begin, w_.sub().data() + v.sub_end};
  }

  // The compact JSON of any value: what CompactJson gives for it.
  std::string Json(const JVal& v) const {
    if (v.captured) return std::string(w_.Json(v));
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> wr(buf);
    switch (v.kind) {
      case JVal::kNull: wr.Null(); break;
      case JVal::kBool: wr.Bool(v.b); break;
      case JVal::kNeg: wr.Int64(v.i); break;
      case JVal::kPos: wr.Uint64(v.u); break;
      case JVal::kDouble: wr.Double(v.d); break;
      case JVal::kString:
        wr.String(v.s.data(), static_cast<rapidjson::SizeType>(v.s.size()));
        break;
      default: break;
    }
    return {buf.GetString(), buf.GetSize()};
  }

  static bool Id(const Obj& obj, std::string_view key, bool required, std::string& out) {
    out.clear();
    const JVal* v = obj.Find(key);
    if (v != nullptr && !v->IsString()) return false;
    if (v == nullptr || v->s.empty()) return !required;
    return NormalizeId(v->s, out);
  }
  static bool String(const Obj& obj, std::string_view key, std::optional<std::string>& out) {
    out.reset();
    const JVal* v = obj.Find(key);
    if (v == nullptr) return true;
    if (!v->IsString()) return false;
    out.emplace(v->s);
    return true;
  }
  static bool RequiredString(const Obj& obj, std::string_view key, std::string& out) {
    std::optional<std::string> s;
    if (!String(obj, key, s) || !s) return false;
    out = std::move(*s);
    return true;
  }
  static bool Nanos(const JVal* v, std::optional<int64_t>& out) {
    out.reset();
    return v == nullptr || NanosOf(*v, out);
  }
  static bool Rfc3339(const JVal* v, std::optional<int64_t>& out) {
    out.reset();
    if (v == nullptr) return true;
    if (!v->IsString()) return false;
    int64_t ns = 0;
    if (!ParseTimeLenient(v->s, ns) || !CheckTimeRange(ns, {}).ok()) return false;
    out = ns;
    return true;
  }
  static bool Score(const JVal* v, std::optional<double>& out) {
    out.reset();
    if (v == nullptr) return true;
    if (!v->IsNumber()) return false;
    const double d = v->GetDouble();
    if (!std::isfinite(d)) return false;
    out = d;
    return true;
  }
  bool Metadata(const Obj& obj, std::string& out) const {
    out = "{}";
    const JVal* v = obj.Find("metadata");
    if (v == nullptr) return true;
    if (!v->IsObject()) return false;
    out = Json(*v);
    return true;
  }
  static bool UpstreamId(const Obj& obj, std::string_view key, std::optional<std::string>& out) {
    std::optional<std::string> s;
    if (!String(obj, key, s)) return false;
    if (s && !s->empty()) out = std::move(s);
    return true;
  }
  static bool SessionId(const Obj& obj, std::string_view key, std::string& out) {
    std::optional<std::string> s;
    if (!String(obj, key, s)) return false;
    if (s) out = std::move(*s);
    return true;
  }
  // AnnotatorIds, over kept members.
  class Annotator {
   public:
    bool Read(const Obj& obj, std::string_view key, const char* name) {
      std::optional<std::string> s;
      if (!String(obj, key, s)) return false;
      if (s && !s->empty()) ids_.emplace_back(name, std::move(*s));
      return true;
    }
    std::string Json() const { return decode::UpstreamIdsJson(ids_); }

   private:
    std::vector<std::pair<const char*, std::string>> ids_;
  };

  static bool FeedbackTime(const Obj& obj, Annotation& a) {
    if (const JVal* v = obj.Find("timestamp_unix_nano")) return Nanos(v, a.timestamp_ns);
    if (const JVal* v = obj.Find("timestamp")) return Rfc3339(v, a.timestamp_ns);
    return Rfc3339(obj.Find("created_at"), a.timestamp_ns);
  }

  bool NativeSpan(const DecodeLimits& limits, Span& span) {
    const Obj obj = Top();
    if (!Id(obj, "trace_id", true, span.trace_id) || !Id(obj, "span_id", true, span.span_id) ||
        !Id(obj, "parent_span_id", false, span.parent_span_id)) {
      return false;
    }
    std::optional<std::string> s;
    if (!String(obj, "name", s)) return false;
    span.name = s.value_or("");
    if (!NativeTime(obj, "start_time_unix_nano", "start_time", span.start_ns) ||
        !NativeTime(obj, "end_time_unix_nano", "end_time", span.end_ns)) {
      return false;
    }
    if (span.start_ns && span.end_ns && *span.end_ns < *span.start_ns) return false;
    if (!String(obj, "status_message", s)) return false;
    span.status_message = s.value_or("");
    if (const JVal* status = obj.Find("status")) {
      const JVal* code = status;
      if (status->IsObject()) {
        const Obj st = Sub(*status);
        code = st.Find("code");
        if (span.status_message.empty()) {
          if (!String(st, "message", s)) return false;
          span.status_message = s.value_or("");
        }
      } else if (!status->IsString()) {
        return false;
      }
      if (code != nullptr && !StatusOf(*code, span.status)) return false;
    }
    for (const auto& [key, attrs, dst] :
         {std::tuple{"attributes", &w_.top_attrs(), &span.attributes},
          std::tuple{"resource", &w_.top_resource(), &span.resource}}) {
      const JVal* v = obj.Find(key);
      if (v == nullptr) continue;
      if (!v->IsObject() || v->captured) return false;
      (void)limits;
      *dst = std::move(*attrs);
    }
    if (const JVal* v = obj.Find("input"))
      span.input = v->IsString() ? std::string(v->s) : Json(*v);
    if (const JVal* v = obj.Find("output")) {
      span.output = v->IsString() ? std::string(v->s) : Json(*v);
    }
    if (!String(obj, "kind", s)) return false;
    span.kind = s.value_or("");
    ApplyCanonicalMapping(span);
    return true;
  }

  bool NativeFeedback(Annotation& a) const {
    const Obj obj = Top();
    if (!Id(obj, "trace_id", false, a.trace_id) || !Id(obj, "span_id", false, a.span_id) ||
        !RequiredString(obj, "name", a.name) || !Score(obj.Find("score"), a.score) ||
        !String(obj, "label", a.label) || !String(obj, "explanation", a.explanation) ||
        !String(obj, "source", a.source)) {
      return false;
    }
    if (a.source) {
      *a.source = Lower(*a.source);
      if (*a.source != "end_user" && *a.source != "llm_judge" && *a.source != "human" &&
          *a.source != "code" && *a.source != "support") {
        return false;
      }
    }
    if (!Metadata(obj, a.metadata_json) || !UpstreamId(obj, "id", a.id)) return false;
    if (const JVal* annotator = obj.Find("annotator")) {
      if (!annotator->IsObject()) return false;
      if (Sub(*annotator).size() > 0) a.annotator_json = Json(*annotator);
    }
    return String(obj, "expected_output", a.expected_output) &&
           SessionId(obj, "session_id", a.session_id) && FeedbackTime(obj, a);
  }

  bool Phoenix(Annotation& a) const {
    const Obj obj = Top();
    if (!Id(obj, "trace_id", false, a.trace_id) || !Id(obj, "span_id", false, a.span_id) ||
        !RequiredString(obj, "name", a.name)) {
      return false;
    }
    std::optional<std::string> kind;
    if (!String(obj, "annotator_kind", kind)) return false;
    if (kind) {
      const char* source =
          MapName(*kind, {{"human", "human"}, {"llm", "llm_judge"}, {"code", "code"}});
      if (source == nullptr) return false;
      a.source = source;
    }
    if (const JVal* result = obj.Find("result")) {
      if (!result->IsObject()) return false;
      const Obj r = Sub(*result);
      if (!String(r, "label", a.label) || !Score(r.Find("score"), a.score) ||
          !String(r, "explanation", a.explanation)) {
        return false;
      }
    }
    if (!Metadata(obj, a.metadata_json) || !UpstreamId(obj, "identifier", a.id)) return false;
    if (!a.id && !UpstreamId(obj, "id", a.id)) return false;
    Annotator annotator;
    if (!annotator.Read(obj, "user_id", "user_id")) return false;
    a.annotator_json = annotator.Json();
    return SessionId(obj, "session_id", a.session_id) && FeedbackTime(obj, a);
  }

  bool Langfuse(Annotation& a) const {
    const Obj obj = Top();
    if (!Id(obj, "traceId", false, a.trace_id) || !SessionId(obj, "sessionId", a.session_id) ||
        !Id(obj, "observationId", false, a.span_id) || !RequiredString(obj, "name", a.name)) {
      return false;
    }
    const JVal* value = obj.Find("value");
    std::optional<std::string> type;
    if (!String(obj, "dataType", type)) return false;
    std::string t;
    if (type) {
      t = Lower(*type);
    } else if (value != nullptr) {
      t = value->IsString() ? "categorical" : value->IsBool() ? "boolean" : "numeric";
    }
    std::optional<std::string> string_value;
    if (!String(obj, "stringValue", string_value)) return false;
    std::optional<std::string> text;
    if (t == "numeric") {
      if (!Score(value, a.score)) return false;
    } else if (t == "boolean") {
      if (value != nullptr && value->IsBool()) {
        a.score = value->b ? 1.0 : 0.0;
      } else if (value != nullptr && value->IsNumber()) {
        const double d = value->GetDouble();
        if (d != 0.0 && d != 1.0) return false;
        a.score = d;
      } else if (value != nullptr) {
        return false;
      }
      a.label = string_value;
    } else if (t == "categorical") {
      if (value != nullptr && value->IsString()) {
        a.label = std::string(value->s);
      } else if (string_value) {
        a.label = string_value;
      } else if (value != nullptr) {
        return false;
      }
    } else if (t == "correction" || t == "text") {
      std::optional<std::string>& dst = t == "correction" ? a.expected_output : text;
      if (value != nullptr && value->IsString()) {
        dst = std::string(value->s);
      } else if (value != nullptr) {
        return false;
      } else {
        dst = string_value;
      }
    } else if (type) {
      return false;
    }
    std::optional<std::string> comment;
    if (!String(obj, "comment", comment)) return false;
    a.explanation = text ? text : comment;
    std::optional<std::string> source;
    if (!String(obj, "source", source)) return false;
    if (source) {
      const char* mapped =
          MapName(*source, {{"api", "end_user"}, {"annotation", "human"}, {"eval", "llm_judge"}});
      if (mapped == nullptr) return false;
      a.source = mapped;
    }
    if (!Metadata(obj, a.metadata_json)) return false;
    if (text && comment) {
      // MetadataWithComment: `"comment"` first, then the metadata's own members.
      const JVal* meta = obj.Find("metadata");
      if (meta != nullptr && Sub(*meta).Has("comment")) {
        a.metadata_json = Json(*meta);
      } else {
        rapidjson::StringBuffer buf;
        rapidjson::Writer<rapidjson::StringBuffer> w(buf);
        w.StartObject();
        w.Key("comment");
        w.String(comment->data(), static_cast<rapidjson::SizeType>(comment->size()));
        w.EndObject();
        std::string out(buf.GetString(), buf.GetSize());
        if (meta != nullptr && Sub(*meta).size() > 0) {
          out.pop_back();  // '}'
          out.push_back(',');
          out.append(w_.Json(*meta).substr(1));
        }
        a.metadata_json = std::move(out);
      }
    }
    if (!UpstreamId(obj, "id", a.id)) return false;
    Annotator annotator;
    if (!annotator.Read(obj, "authorUserId", "user_id") ||
        !annotator.Read(obj, "queueId", "queue_id") ||
        !annotator.Read(obj, "configId", "config_id")) {
      return false;
    }
    a.annotator_json = annotator.Json();
    return FeedbackTime(obj, a);
  }

  bool LangSmith(Annotation& a) const {
    const Obj obj = Top();
    if (!Id(obj, "trace_id", false, a.trace_id) || !Id(obj, "run_id", false, a.span_id) ||
        !RequiredString(obj, "key", a.name)) {
      return false;
    }
    if (const JVal* score = obj.Find("score")) {
      if (score->IsBool()) {
        a.score = score->b ? 1.0 : 0.0;
      } else if (!Score(score, a.score)) {
        return false;
      }
    }
    if (const JVal* value = obj.Find("value")) {
      if (value->IsString()) {
        a.label = std::string(value->s);
      } else if (value->IsNumber() && !a.score) {
        a.score = value->GetDouble();
      } else if (value->IsBool() && !a.score) {
        a.score = value->b ? 1.0 : 0.0;
      } else {
        a.label = Json(*value);
      }
    }
    if (!String(obj, "comment", a.explanation)) return false;
    if (const JVal* fs = obj.Find("feedback_source")) {
      if (!fs->IsObject()) return false;
      const Obj f = Sub(*fs);
      std::optional<std::string> type;
      if (!String(f, "type", type)) return false;
      if (type) {
        const char* mapped = MapName(*type, {{"api", "end_user"},
                                             {"app", "human"},
                                             {"model", "llm_judge"},
                                             {"auto_eval", "llm_judge"}});
        if (mapped != nullptr) a.source = mapped;
      }
      a.metadata_json = "{\"feedback_source\":" + Json(*fs) + "}";
      Annotator annotator;
      if (!annotator.Read(f, "user_id", "user_id") ||
          !annotator.Read(f, "user_name", "user_name")) {
        return false;
      }
      a.annotator_json = annotator.Json();
    }
    if (const JVal* correction = obj.Find("correction")) {
      if (correction->IsString()) {
        a.expected_output = std::string(correction->s);
      } else if (correction->IsObject()) {
        const Obj c = Sub(*correction);
        if (c.size() == 1 && c.begin()->v.IsString() &&
            (c.begin()->key == "output" || c.begin()->key == "outputs")) {
          a.expected_output = std::string(c.begin()->v.s);
        } else {
          a.expected_output = Json(*correction);
        }
      } else {
        return false;
      }
    }
    return UpstreamId(obj, "id", a.id) && FeedbackTime(obj, a);
  }

  bool Thumbs(Annotation& a) const {
    const Obj obj = Top();
    std::string thumbs;
    if (!Id(obj, "trace_id", false, a.trace_id) || !Id(obj, "span_id", false, a.span_id) ||
        !RequiredString(obj, "thumbs", thumbs)) {
      return false;
    }
    thumbs = Lower(thumbs);
    if (thumbs != "up" && thumbs != "down") return false;
    a.name = "thumbs";
    a.score = thumbs == "up" ? 1.0 : 0.0;
    a.label = thumbs;
    a.source = "end_user";
    if (!String(obj, "explanation", a.explanation)) return false;
    if (!a.explanation && !String(obj, "comment", a.explanation)) return false;
    return Metadata(obj, a.metadata_json) && UpstreamId(obj, "id", a.id) &&
           SessionId(obj, "session_id", a.session_id) && FeedbackTime(obj, a);
  }

  bool OtelEval(Annotation& a) const {
    const Obj obj = Top();
    if (!Id(obj, "trace_id", false, a.trace_id) || !Id(obj, "span_id", false, a.span_id) ||
        !RequiredString(obj, "gen_ai.evaluation.name", a.name) ||
        !Score(obj.Find("gen_ai.evaluation.score.value"), a.score) ||
        !String(obj, "gen_ai.evaluation.score.label", a.label) ||
        !String(obj, "gen_ai.evaluation.explanation", a.explanation)) {
      return false;
    }
    a.source = "llm_judge";
    return Metadata(obj, a.metadata_json) && FeedbackTime(obj, a);
  }

 private:
  static bool NativeTime(const Obj& obj, std::string_view nanos_key, std::string_view key,
                         std::optional<int64_t>& out) {
    if (const JVal* v = obj.Find(nanos_key)) return Nanos(v, out);
    return Rfc3339(obj.Find(key), out);
  }

  Walker& w_;
};

// DetectFeedback over kept members.
FeedbackShape DetectFeedbackOf(const Obj& obj) {
  if (obj.Has("thumbs")) return FeedbackShape::kThumbs;
  if (obj.Has("gen_ai.evaluation.name")) return FeedbackShape::kOtelGenAi;
  if (obj.Has("annotator_kind") || obj.Has("result")) return FeedbackShape::kPhoenix;
  if ((obj.Has("traceId") || obj.Has("sessionId")) &&
      (obj.Has("dataType") || obj.Has("value") || obj.Has("observationId"))) {
    return FeedbackShape::kLangfuse;
  }
  if (obj.Has("key") && (obj.Has("run_id") || obj.Has("feedback_source"))) {
    return FeedbackShape::kLangSmith;
  }
  if (obj.Has("trace_id") || obj.Has("name")) return FeedbackShape::kNative;
  return FeedbackShape::kAuto;
}

// LooksLikeNativeSpan over kept members.
bool LooksLikeNativeSpanOf(const Obj& obj) {
  if (!obj.Has("span_id")) return false;
  bool span_field = false;
  for (const char* key : {"start_time_unix_nano", "start_time", "end_time_unix_nano", "end_time",
                          "parent_span_id", "name", "attributes", "status"}) {
    span_field = span_field || obj.Has(key);
  }
  if (!span_field) return false;
  for (const char* key : kFeedbackMarkers) {
    if (obj.Has(key)) return false;
  }
  return true;
}

#undef ONEPASS_REQUIRE

// The walk's buffer and state, kept per thread so that a message allocates little.
struct State {
  std::string buf;
  Walker walker;
};

}  // namespace

std::optional<DecodedMessage> Decode(std::string_view bytes, Want want, FeedbackShape fshape,
                                     std::string_view key, const DecodeLimits& limits) {
  // Only an object, with no byte-order mark before it (the document path skips one, and its
  // error offsets count it), within the size limit.
  if (bytes.size() > limits.max_message_bytes || FirstSignificantByte(bytes) != '{' ||
      bytes.starts_with("\xef\xbb\xbf")) {
    return std::nullopt;
  }
  thread_local State state;
  state.buf.assign(bytes);
  Walker& w = state.walker;
  if (!w.Walk(state.buf.data(), state.buf.size(), limits)) return std::nullopt;
  const Obj top(w.top().data(), w.top().data() + w.top().size());
  Fields r(w);
  bool spans = false;
  bool otlp = false;
  switch (want) {
    case Want::kSpans:
      spans = true;
      otlp = top.Has("resourceSpans");
      break;
    case Want::kNativeSpan: spans = true; break;
    case Want::kOtlpSpans: spans = otlp = true; break;
    case Want::kFeedback: break;
    case Want::kAny:
      otlp = top.Has("resourceSpans");
      spans = otlp || LooksLikeNativeSpanOf(top);
      break;
  }
  if (otlp) {
    if (!w.otlp()) return std::nullopt;
    DecodedMessage msg = std::move(w.msg());
    w.msg() = DecodedMessage{};
    if (msg.spans.empty() && msg.annotations.empty()) return std::nullopt;
    FinishMessage(bytes, msg);
    return msg;
  }
  DecodedMessage msg;
  if (spans) {
    if (!r.NativeSpan(limits, msg.spans.emplace_back())) return std::nullopt;
    FinishMessage(bytes, msg);
    return msg;
  }
  const FeedbackShape shape = fshape == FeedbackShape::kAuto ? DetectFeedbackOf(top) : fshape;
  Annotation a;
  bool decoded = false;
  switch (shape) {
    case FeedbackShape::kNative: decoded = r.NativeFeedback(a); break;
    case FeedbackShape::kPhoenix: decoded = r.Phoenix(a); break;
    case FeedbackShape::kLangfuse: decoded = r.Langfuse(a); break;
    case FeedbackShape::kLangSmith: decoded = r.LangSmith(a); break;
    case FeedbackShape::kOtelGenAi: decoded = r.OtelEval(a); break;
    case FeedbackShape::kThumbs: decoded = r.Thumbs(a); break;
    case FeedbackShape::kAuto: break;
  }
  if (!decoded) return std::nullopt;
  // As FeedbackFromDoc.
  if (!a.trace_id.empty() || !a.span_id.empty()) a.session_id.clear();
  const bool session_scoped = a.trace_id.empty() && !a.session_id.empty();
  if (!session_scoped && a.trace_id.empty() && IsTraceIdKey(key)) {
    NormalizeId(key, a.trace_id);
  } else if (!session_scoped && a.trace_id.empty() && a.span_id.empty()) {
    return std::nullopt;
  }
  msg.annotations.push_back(std::move(a));
  FinishMessage(bytes, msg);
  return msg;
}

}  // namespace triaged::decode::onepass
