// The line reader of `replay` and `explain`: every line of every input, in order, whatever the
// buffer boundaries, with the last line kept when it has no newline.
#include "tools/input_lines.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using ::triaged::testing::TempDir;

std::vector<std::pair<uint64_t, std::string>> Lines(const std::vector<std::string>& inputs,
                                                    bool& ok, std::string& err) {
  std::vector<std::pair<uint64_t, std::string>> lines;
  std::ostringstream errors;
  ok = ForEachInputLine(inputs, errors, [&](std::string_view line, uint64_t n) {
    lines.emplace_back(n, std::string(line));
  });
  err = errors.str();
  return lines;
}

TEST(InputLines, EveryLineInOrderWithItsNumberPerFile) {
  TempDir dir;
  const std::string a = dir.Write("a.jsonl", "{\"a\":1}\n\n{\"a\":2}\r\n");
  const std::string b = dir.Write("b.jsonl", "{\"b\":1}\n{\"b\":2}");
  bool ok = false;
  std::string err;
  const auto lines = Lines({a, b}, ok, err);
  EXPECT_TRUE(ok);
  EXPECT_EQ(err, "");
  const std::vector<std::pair<uint64_t, std::string>> want = {
      {1, "{\"a\":1}"}, {2, ""}, {3, "{\"a\":2}\r"}, {1, "{\"b\":1}"}, {2, "{\"b\":2}"}};
  EXPECT_EQ(lines, want);
}

TEST(InputLines, LinesAcrossAndLongerThanTheReadBuffer) {
  TempDir dir;
  // Lines of many lengths so that newlines fall on every side of the 1 MiB reads, and one line
  // of 3 MiB that makes the buffer grow twice.
  std::string content;
  std::vector<std::string> want;
  for (size_t i = 0; content.size() < (size_t{5} << 20); ++i) {
    want.push_back(std::string(1 + (i * 7919) % 40000, static_cast<char>('a' + i % 26)));
    if (i == 40) want.back() = std::string(size_t{3} << 20, 'x');
    content += want.back() + "\n";
  }
  bool ok = false;
  std::string err;
  const auto lines = Lines({dir.Write("big.jsonl", content)}, ok, err);
  ASSERT_TRUE(ok) << err;
  ASSERT_EQ(lines.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(lines[i].first, i + 1);
    EXPECT_EQ(lines[i].second, want[i]) << "line " << i + 1;
  }
}

TEST(InputLines, EmptyFileHasNoLines) {
  TempDir dir;
  bool ok = false;
  std::string err;
  EXPECT_TRUE(Lines({dir.Write("empty.jsonl", "")}, ok, err).empty());
  EXPECT_TRUE(ok);
}

TEST(InputLines, UnreadableInputsAreReportedByName) {
  TempDir dir;
  bool ok = true;
  std::string err;
  const std::string missing = dir.path() + "/missing.jsonl";
  EXPECT_TRUE(Lines({missing}, ok, err).empty());
  EXPECT_FALSE(ok);
  EXPECT_EQ(err, missing + ": cannot read: No such file or directory\n");

  // A directory opens but cannot be read: an error too, not an input without lines.
  EXPECT_TRUE(Lines({dir.path()}, ok, err).empty());
  EXPECT_FALSE(ok);
  EXPECT_EQ(err, dir.path() + ": cannot read: Is a directory\n");
}

}  // namespace
}  // namespace triaged
