#include <gtest/gtest.h>

#include "plugin/plugin_registry.h"

namespace sluice {
namespace {

TEST(ParseDuration, UnderstandsSparkStyleDurations) {
  EXPECT_EQ(*ParseDuration("10 seconds"), 10000000);
  EXPECT_EQ(*ParseDuration("500 ms"), 500000);
  EXPECT_EQ(*ParseDuration("1.5 minutes"), 90000000);
  EXPECT_EQ(*ParseDuration("2 hours"), 7200000000);
  EXPECT_EQ(*ParseDuration("1 day"), 86400000000);
  EXPECT_EQ(*ParseDuration("3s"), 3000000);
}

TEST(ParseDuration, RejectsWhatIsNotADuration) {
  EXPECT_EQ(ParseDuration("soon").status().message(),
            "'soon' is not a duration; expected a number and a unit, e.g. '10 seconds'");
  EXPECT_EQ(ParseDuration("5 fortnights").status().message(),
            "'5 fortnights' has an unknown unit 'fortnights'; expected ms, seconds, minutes, hours, days or weeks");
}

}  // namespace
}  // namespace sluice
