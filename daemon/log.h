// Structured logs: one JSON object per line on stderr (DESIGN §6). No event payloads at info.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace triaged::log {

using Field = std::pair<std::string_view, std::string>;

void Info(std::string_view msg, std::initializer_list<Field> fields = {});
void Warn(std::string_view msg, std::initializer_list<Field> fields = {});
void Error(std::string_view msg, std::initializer_list<Field> fields = {});

}  // namespace triaged::log
