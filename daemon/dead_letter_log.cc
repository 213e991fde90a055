#include "daemon/dead_letter_log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <utility>

namespace triaged {

std::string DeadLetterLog::Summary::ReasonsJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [reason, n] : reasons) {
    w.Key(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
    w.Uint64(n);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool DeadLetterLog::Add(SteadyTime now, std::string_view reason) {
  if (held_.count == 0 && (!last_line_ || now - *last_line_ >= interval_)) {
    last_line_ = now;
    return true;
  }
  ++held_.count;
  auto it = held_.reasons.find(reason);
  if (it == held_.reasons.end()) it = held_.reasons.emplace(std::string(reason), 0).first;
  ++it->second;
  return false;
}

std::optional<DeadLetterLog::Summary> DeadLetterLog::Due(SteadyTime now) {
  if (held_.count == 0 || (last_line_ && now - *last_line_ < interval_)) return std::nullopt;
  last_line_ = now;
  return TakeHeld();
}

std::optional<DeadLetterLog::Summary> DeadLetterLog::TakeHeld() {
  if (held_.count == 0) return std::nullopt;
  return std::exchange(held_, Summary{});
}

}  // namespace triaged
