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

// Drops the lines below `level`: trace, debug, info (the default), warn or error. Any other
// value leaves the level as it is.
void SetLevel(std::string_view level);

}  // namespace triaged::log
