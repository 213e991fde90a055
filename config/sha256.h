// SHA-256 (FIPS 180-4), used to stamp routed items with the version of the config that routed
// them. Self-contained so the config library needs no crypto dependency.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace triaged {

class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  // Finishes the hash; the object must not be updated afterwards.
  std::array<uint8_t, 32> Final();

 private:
  void Block(const uint8_t* p);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lowercase hex digest of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace triaged
