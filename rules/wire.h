// The bytes of triaged's binary layouts: a packed span in memory (rules/packed_span.h) and an
// events record on Kafka and in the trace store (rules/event_record.h). Varints, strings as a
// varint length and their bytes, numbers as their 8 bytes in the machine's order (little-endian
// on every platform triaged builds for; event_record.cc checks).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace triaged {

class WireWriter {
 public:
  explicit WireWriter(std::string& out) : out_(out) {}

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
  void Append(std::string_view bytes) { out_.append(bytes); }
  size_t size() const { return out_.size(); }

 protected:
  std::string& out_;
};

}  // namespace triaged
