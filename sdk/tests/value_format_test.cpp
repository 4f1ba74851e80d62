#include <gtest/gtest.h>

#include "sluice/value_format.h"

namespace sluice {
namespace {

TEST(Timestamp, FormatsUtcWithOptionalFraction) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01 00:00:00");
  EXPECT_EQ(FormatTimestamp(1714564800000000), "2024-05-01 12:00:00");
  EXPECT_EQ(FormatTimestamp(1714564800500000), "2024-05-01 12:00:00.5");
  EXPECT_EQ(FormatTimestamp(1714564800000123, true), "2024-05-01T12:00:00.000123Z");
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31 23:59:59.999999");
}

TEST(Timestamp, ParsesDatesTimesAndOffsets) {
  EXPECT_EQ(ParseTimestamp("2024-05-01"), 1714521600000000);
  EXPECT_EQ(ParseTimestamp("2024-05-01 12:00:00"), 1714564800000000);
  EXPECT_EQ(ParseTimestamp("2024-05-01T12:00:00.5Z"), 1714564800500000);
  EXPECT_EQ(ParseTimestamp("2024-05-01T14:00:00+02:00"), 1714564800000000);
  EXPECT_EQ(ParseTimestamp("2024-05-01 12:00"), 1714564800000000);
  EXPECT_FALSE(ParseTimestamp("2024-13-01").has_value());
  EXPECT_FALSE(ParseTimestamp("yesterday").has_value());
  EXPECT_FALSE(ParseTimestamp("2024-05-01 12:00:00 junk").has_value());
}

TEST(Json, EscapesControlCharactersAndQuotes) {
  std::string out;
  AppendJsonString(out, "a\"b\\c\nd\x01");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(Json, DoublesRoundTripAndKeepTheirType) {
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(3.0), "3.0");
  EXPECT_EQ(FormatDouble(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(FormatDouble(1.0 / 3.0), "0.3333333333333333");
}

TEST(Base64, EncodesWithPadding) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
}

TEST(Base64, DecodesWhatItEncodesAndRefusesTheRest) {
  for (std::string bytes : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"),
                            std::string("\0\xff\x10 binary", 10)}) {
    std::string decoded = "kept:";
    ASSERT_TRUE(AppendBase64Decoded(Base64Encode(bytes), decoded)) << bytes;
    EXPECT_EQ(decoded, "kept:" + bytes);
  }
  std::string out;
  EXPECT_FALSE(AppendBase64Decoded("Zg=", out));     // not a multiple of 4
  EXPECT_FALSE(AppendBase64Decoded("Z===", out));    // too much padding
  EXPECT_FALSE(AppendBase64Decoded("Zg=v", out));    // padding before data
  EXPECT_FALSE(AppendBase64Decoded("Zg==Zm9v", out));  // padding before the end
  EXPECT_FALSE(AppendBase64Decoded("Zm9!", out));    // not in the alphabet
}

}  // namespace
}  // namespace sluice
