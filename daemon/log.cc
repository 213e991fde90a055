#include "daemon/log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <mutex>

#include "rules/decode.h"

namespace triaged::log {
namespace {

spdlog::logger& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_logger_mt("triaged");
    l->set_pattern("%v");  // the line is already a JSON object
    l->flush_on(spdlog::level::info);
    return l;
  }();
  return *logger;
}

std::string Line(std::string_view level, std::string_view msg,
                 std::initializer_list<Field> fields) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string ts = FormatRfc3339(now);
  w.Key("ts");
  w.String(ts.c_str());
  w.Key("level");
  w.String(level.data(), static_cast<rapidjson::SizeType>(level.size()));
  w.Key("msg");
  w.String(msg.data(), static_cast<rapidjson::SizeType>(msg.size()));
  for (const auto& [key, value] : fields) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    switch (value.kind()) {
      case Value::Kind::kString:
        w.String(value.str().data(), static_cast<rapidjson::SizeType>(value.str().size()));
        break;
      case Value::Kind::kInt: w.Int64(value.i()); break;
      case Value::Kind::kUint: w.Uint64(value.u()); break;
      case Value::Kind::kDouble: w.Double(value.d()); break;
      case Value::Kind::kBool: w.Bool(value.b()); break;
      case Value::Kind::kJson:
        w.RawValue(value.str().data(), value.str().size(), rapidjson::kObjectType);
        break;
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// The lines written, in the order they reach stderr: whether the reason Finish repeats is still
// the last line depends on every writer (librdkafka's threads too) counting under one lock.
struct Lines {
  std::mutex mu;
  uint64_t written = 0;
  bool finished = false;
  std::string last_error;  // the last Error line, and its number
  uint64_t last_error_at = 0;
};

// Never destroyed: the threads of a Kafka client left to the OS may still log during exit.
Lines& Out() {
  static Lines* lines = new Lines;
  return *lines;
}

// Under Out().mu. The line's number, or 0 when it is not written.
uint64_t WriteLocked(Lines& out, spdlog::level::level_enum level, const std::string& line) {
  if (out.finished || !Logger().should_log(level)) return 0;
  Logger().log(level, line);
  return ++out.written;
}

void Write(spdlog::level::level_enum level, const std::string& line) {
  Lines& out = Out();
  const std::lock_guard<std::mutex> lock(out.mu);
  WriteLocked(out, level, line);
}

}  // namespace

std::string LineForTest(std::string_view level, std::string_view msg,
                        std::initializer_list<Field> fields) {
  return Line(level, msg, fields);
}

void Info(std::string_view msg, std::initializer_list<Field> fields) {
  if (Logger().should_log(spdlog::level::info)) {
    Write(spdlog::level::info, Line("info", msg, fields));
  }
}
void Warn(std::string_view msg, std::initializer_list<Field> fields) {
  if (Logger().should_log(spdlog::level::warn)) {
    Write(spdlog::level::warn, Line("warn", msg, fields));
  }
}
void Error(std::string_view msg, std::initializer_list<Field> fields) {
  std::string line = Line("error", msg, fields);
  Lines& out = Out();
  const std::lock_guard<std::mutex> lock(out.mu);
  if (const uint64_t at = WriteLocked(out, spdlog::level::err, line)) {
    out.last_error = std::move(line);
    out.last_error_at = at;
  }
}
void LibraryError(std::string_view msg, std::initializer_list<Field> fields) {
  Write(spdlog::level::err, Line("error", msg, fields));
}

void Finish(bool failed) {
  Lines& out = Out();
  const std::lock_guard<std::mutex> lock(out.mu);
  if (failed && out.last_error_at != 0 && out.written != out.last_error_at) {
    WriteLocked(out, spdlog::level::err, out.last_error);
  }
  out.finished = true;
  Logger().flush();
}

void SetLevel(std::string_view level) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace},
      {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},
      {"error", spdlog::level::err}};
  for (const auto& [name, value] : kLevels) {
    if (level == name) Logger().set_level(value);
  }
}

}  // namespace triaged::log
