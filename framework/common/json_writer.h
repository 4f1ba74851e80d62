// A small streaming JSON writer for the documents the engine writes itself:
// progress events, offset and commit log entries, checkpoint metadata.
// Keys come out in the order written, so documents are stable and diffable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/value_format.h"

namespace sluice {

class JsonWriter {
 public:
  JsonWriter& BeginObject() { Separate(); out_ += '{'; first_.push_back(true); return *this; }
  JsonWriter& EndObject() { out_ += '}'; first_.pop_back(); return *this; }
  JsonWriter& BeginArray() { Separate(); out_ += '['; first_.push_back(true); return *this; }
  JsonWriter& EndArray() { out_ += ']'; first_.pop_back(); return *this; }
  JsonWriter& Key(std::string_view k) {
    Separate();
    AppendJsonString(out_, k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& String(std::string_view v) { Separate(); AppendJsonString(out_, v); return *this; }
  JsonWriter& Int(int64_t v) { Separate(); out_ += std::to_string(v); return *this; }
  JsonWriter& Double(double v) {
    Separate();
    if (v != v || v == 1.0 / 0.0 || v == -1.0 / 0.0) out_ += "null";
    else out_ += FormatDouble(v);
    return *this;
  }
  JsonWriter& Bool(bool v) { Separate(); out_ += v ? "true" : "false"; return *this; }
  JsonWriter& Null() { Separate(); out_ += "null"; return *this; }
  // Inserts already-serialised JSON (a source's offset, for example).
  JsonWriter& Raw(std::string_view json) { Separate(); out_ += json; return *this; }

  const std::string& str() const { return out_; }

 private:
  void Separate() {
    if (after_key_) { after_key_ = false; return; }
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
  }
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace sluice
