// The status page served at / by the admin server: one self-contained HTML document (no build
// step, no external assets) that polls /v1/status and /v1/rules.
#pragma once

namespace triaged {

extern const char kStatusPageHtml[];

}  // namespace triaged
