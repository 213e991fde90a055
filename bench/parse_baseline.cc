// The replay ceiling's baseline: read JSONL lines and RapidJSON-parse each, nothing else.
//
//   parse_baseline FILE   -> lines, bytes and parse failures on stdout
#include <rapidjson/document.h>

#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: parse_baseline FILE.jsonl\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "parse_baseline: cannot open %s\n", argv[1]);
    return 1;
  }
  std::string line;
  unsigned long long lines = 0, bytes = 0, failures = 0, members = 0;
  rapidjson::Document doc;
  while (std::getline(in, line)) {
    ++lines;
    bytes += line.size() + 1;
    doc.Parse(line.data(), line.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      ++failures;
      continue;
    }
    members += doc.MemberCount();
  }
  std::printf("{\"lines\":%llu,\"bytes\":%llu,\"failures\":%llu,\"members\":%llu}\n", lines, bytes,
              failures, members);
  return failures == 0 ? 0 : 1;
}
