#include "common/json_writer.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(JsonWriter, NestsObjectsAndArraysWithCommas) {
  JsonWriter w;
  w.BeginObject().Key("a").Int(1).Key("b").BeginArray().String("x").Null().Bool(true).EndArray();
  w.Key("c").BeginObject().Key("d").Double(0.5).EndObject().Key("raw").Raw("{\"files\":3}").EndObject();
  EXPECT_EQ(w.str(), R"({"a":1,"b":["x",null,true],"c":{"d":0.5},"raw":{"files":3}})");
}

TEST(JsonWriter, NonFiniteDoublesBecomeNull) {
  JsonWriter w;
  w.BeginArray().Double(1.0 / 0.0).Double(2).EndArray();
  EXPECT_EQ(w.str(), "[null,2.0]");
}

}  // namespace
}  // namespace sluice
