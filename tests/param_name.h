// Test names for gtest's value-parameterized tests: INSTANTIATE_TEST_SUITE_P's name generator,
// so that ctest lists `Suite/Fixture.Test/at_least_once` rather than the parameter's bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace triaged::testing {

// `text` as a gtest parameter name: every run of characters outside [A-Za-z0-9] becomes one '_'
// (none at either end), cut at `max_length` characters; "empty" if nothing is left. Distinct
// texts can give the same name: where they might, add the parameter's index.
inline std::string ParamName(std::string_view text, size_t max_length = 48) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max_length) break;
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum) {
      out += c;
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "empty" : out;
}

}  // namespace triaged::testing
