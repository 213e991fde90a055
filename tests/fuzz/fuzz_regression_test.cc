// Every checked-in fuzz corpus file (fuzz/corpus/TARGET) and every input that ever crashed a
// fuzzer (fuzz/regressions/TARGET, added by scripts/fuzz.sh) through the fuzz targets' own
// code, in the normal sanitized build: a crash found once stays fixed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz/targets.h"

namespace triaged {
namespace {

namespace fs = std::filesystem;

size_t RunDirectory(const fuzz::Target& target, const fs::path& dir) {
  if (!fs::exists(dir)) return 0;
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

class FuzzRegression : public ::testing::TestWithParam<fuzz::Target> {};

TEST_P(FuzzRegression, CorpusAndPastCrashesRunClean) {
  const fs::path root = fs::path(TRIAGED_SOURCE_DIR) / "fuzz";
  const size_t corpus = RunDirectory(GetParam(), root / "corpus" / GetParam().name);
  RunDirectory(GetParam(), root / "regressions" / GetParam().name);
  EXPECT_GE(corpus, 2u) << "the seed corpus of " << GetParam().name << " is missing";
  // Hostile shapes every target must survive, whatever the corpus holds.
  const std::string deep(100'000, '[');
  const std::string invalid_utf8 = "{\"trace_id\":\"\xff\xfe\",\"thumbs\":\"down\"}";
  for (const std::string& bytes : {std::string(), deep, invalid_utf8, std::string(1, '\0')}) {
    GetParam().run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegression, ::testing::ValuesIn(fuzz::Targets()),
                         [](const ::testing::TestParamInfo<fuzz::Target>& p) {
                           return std::string(p.param.name);
                         });

}  // namespace
}  // namespace triaged
