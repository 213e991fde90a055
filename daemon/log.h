// Structured logs: one JSON object per line on stderr (DESIGN §6). Field values keep their type:
// numbers and booleans are written as JSON numbers and booleans. No event payloads at info.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace triaged::log {

// A field's value: text, an integer, a floating-point number, a boolean, or a JSON object or
// array written as it is (Json()).
class Value {
 public:
  enum class Kind { kString, kInt, kUint, kDouble, kBool, kJson };
  Value(std::string s) : kind_(Kind::kString), s_(std::move(s)) {}           // NOLINT
  Value(std::string_view s) : kind_(Kind::kString), s_(s) {}                 // NOLINT
  Value(const char* s) : kind_(Kind::kString), s_(s != nullptr ? s : "") {}  // NOLINT
  Value(bool b) : kind_(Kind::kBool), b_(b) {}                               // NOLINT
  template <std::signed_integral T>
  Value(T n) : kind_(Kind::kInt), i_(n) {}  // NOLINT
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) Value(T n) : kind_(Kind::kUint), u_(n) {}  // NOLINT
  Value(double d) : kind_(Kind::kDouble), d_(d) {}                            // NOLINT
  // `json` must be one valid JSON value (an object, an array); it is not checked.
  static Value Json(std::string json) {
    Value v(std::move(json));
    v.kind_ = Kind::kJson;
    return v;
  }

  Kind kind() const { return kind_; }
  const std::string& str() const { return s_; }
  int64_t i() const { return i_; }
  uint64_t u() const { return u_; }
  double d() const { return d_; }
  bool b() const { return b_; }

 private:
  Kind kind_;
  std::string s_;
  int64_t i_ = 0;
  uint64_t u_ = 0;
  double d_ = 0;
  bool b_ = false;
};

using Field = std::pair<std::string_view, Value>;

void Info(std::string_view msg, std::initializer_list<Field> fields = {});
void Warn(std::string_view msg, std::initializer_list<Field> fields = {});
void Error(std::string_view msg, std::initializer_list<Field> fields = {});
// An error line of a library's own (librdkafka's log callback): written like Error, but it is
// not the error a process that stops names as its reason (Finish).
void LibraryError(std::string_view msg, std::initializer_list<Field> fields = {});

// The end of the log. A process that stops on an error (`failed`) ends with its reason: when
// other lines followed the last Error line, that line is written again. Nothing is written
// after this, not even by the threads of a Kafka client left to the OS as the process exits.
void Finish(bool failed);

// The line Info/Warn/Error would write at `level`, without its newline.
std::string LineForTest(std::string_view level, std::string_view msg,
                        std::initializer_list<Field> fields);

// Drops the lines below `level`: trace, debug, info (the default), warn or error. Any other
// value leaves the level as it is.
void SetLevel(std::string_view level);

}  // namespace triaged::log
