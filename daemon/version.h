// The version of triaged, reported by --version and triaged_build_info.
#pragma once

namespace triaged {
inline constexpr const char* kTriagedVersion = "0.1.0";
}  // namespace triaged
