#include "daemon/log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
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

// Every line written counts, so Finish knows whether its reason is still the last line.
std::atomic<uint64_t> written{0};
std::atomic<bool> finished{false};

struct LastError {
  std::mutex mu;
  std::string line;
  uint64_t at = 0;  // `written` once it was written
};

LastError& Last() {
  static LastError last;
  return last;
}

void Write(spdlog::level::level_enum level, const std::string& line) {
  if (finished.load(std::memory_order_acquire) || !Logger().should_log(level)) return;
  Logger().log(level, line);
  written.fetch_add(1, std::memory_order_acq_rel);
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
  LastError& last = Last();
  const std::lock_guard<std::mutex> lock(last.mu);
  Write(spdlog::level::err, line);
  last.line = std::move(line);
  last.at = written.load(std::memory_order_acquire);
}
void LibraryError(std::string_view msg, std::initializer_list<Field> fields) {
  Write(spdlog::level::err, Line("error", msg, fields));
}

void Finish(bool failed) {
  LastError& last = Last();
  const std::lock_guard<std::mutex> lock(last.mu);
  if (failed && !last.line.empty() && written.load(std::memory_order_acquire) != last.at) {
    Write(spdlog::level::err, last.line);
  }
  finished.store(true, std::memory_order_release);
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
