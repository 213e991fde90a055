#include <gtest/gtest.h>

#include "rules/decode.h"

namespace triaged {
namespace {

TEST(Rfc3339, ParsesUtcWithFraction) {
  int64_t ns = 0;
  ASSERT_TRUE(ParseRfc3339("2024-05-01T12:00:00.123456789Z", ns));
  EXPECT_EQ(ns, 1714564800123456789);
  ASSERT_TRUE(ParseRfc3339("1970-01-01T00:00:00Z", ns));
  EXPECT_EQ(ns, 0);
}

TEST(Rfc3339, AppliesOffsets) {
  int64_t utc = 0, plus = 0, minus = 0;
  ASSERT_TRUE(ParseRfc3339("2024-05-01T12:00:00Z", utc));
  ASSERT_TRUE(ParseRfc3339("2024-05-01T14:00:00+02:00", plus));
  ASSERT_TRUE(ParseRfc3339("2024-05-01T06:30:00-05:30", minus));
  EXPECT_EQ(plus, utc);
  EXPECT_EQ(minus, utc);
}

TEST(Rfc3339, TruncatesBeyondNanoseconds) {
  int64_t ns = 0;
  ASSERT_TRUE(ParseRfc3339("2024-05-01T12:00:00.1234567891Z", ns));
  EXPECT_EQ(ns % 1'000'000'000, 123456789);
}

TEST(Rfc3339, RejectsMalformed) {
  int64_t ns = 0;
  for (const char* bad : {"", "2024", "2024-05-01", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z",
                          "2023-02-29T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:00:00.Z",
                          "2024-05-01T12:00:00Zjunk", "2024-05-01T12:00:00+2:00",
                          "9999-01-01T00:00:00Z", "2024-05-01X12:00:00Z", "2024-0a-01T12:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339(bad, ns)) << bad;
  }
  EXPECT_TRUE(ParseRfc3339("2024-02-29T00:00:00Z", ns));
}

TEST(Rfc3339, FormatsMillisecondsUtc) {
  EXPECT_EQ(FormatRfc3339(1714564800123456789), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Rfc3339, RoundTripsAtMillisecondPrecision) {
  for (int64_t ns :
       {int64_t{951782400000000000}, int64_t{4102444799999000000}, int64_t{1700000000001000000}}) {
    int64_t back = 0;
    ASSERT_TRUE(ParseRfc3339(FormatRfc3339(ns), back)) << FormatRfc3339(ns);
    EXPECT_EQ(back, ns);
  }
}

}  // namespace
}  // namespace triaged
