#include <gtest/gtest.h>

#include "config/config.h"

TEST(Config, Smoke) { EXPECT_EQ(triaged::kExitConfig, 78); }
