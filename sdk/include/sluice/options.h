// Plugin options: the table a plugin declares, and the values a pipeline gives.
//
// Every plugin declares its options once, in an OptionSpec table. The host uses
// the same table to validate a pipeline (unknown key, missing required key,
// wrong type: each reported with file:line:column), to fill in defaults, and to
// print `sluice plugins`. A plugin therefore never sees an undeclared key or a
// value of the wrong type.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "sluice/status.h"

namespace sluice {

enum class OptionType : uint8_t {
  kString,
  kInt,
  kFloat,      // an integer is accepted too
  kBool,
  kDuration,   // "10 seconds", "500 ms", "2 minutes"; given to the plugin in microseconds (kInt)
  kPath,       // a string; a relative path is resolved against the pipeline file's directory
  kStringList, // an array of strings
};

inline const char* OptionTypeName(OptionType t) {
  switch (t) {
    case OptionType::kString: return "string";
    case OptionType::kInt: return "integer";
    case OptionType::kFloat: return "number";
    case OptionType::kBool: return "boolean";
    case OptionType::kDuration: return "duration";
    case OptionType::kPath: return "path";
    case OptionType::kStringList: return "array of strings";
  }
  return "?";
}

// One accepted option. A key ending in ".*" (for example "kafka.*") accepts any
// key with that prefix, as a string, so a plugin can pass options through to a
// library it wraps. `allowed` optionally lists the accepted values of a string
// option separated by '|', e.g. "text|csv|jsonl".
struct OptionSpec {
  const char* key;
  OptionType type;
  const char* default_value;  // nullptr: no default
  bool required;
  const char* description;
  const char* allowed = nullptr;
};

using OptionValue = std::variant<std::string, int64_t, double, bool, std::vector<std::string>>;

// The options of one plugin instance, validated and with defaults applied.
class Options {
 public:
  void Set(const std::string& key, OptionValue v) { values_[key] = std::move(v); }
  bool Has(const std::string& key) const { return values_.count(key) != 0; }
  const std::map<std::string, OptionValue>& values() const { return values_; }

  std::string GetString(const std::string& key, const std::string& fallback = "") const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    if (auto* s = std::get_if<std::string>(&it->second)) return *s;
    return fallback;
  }
  int64_t GetInt(const std::string& key, int64_t fallback = 0) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
    if (auto* d = std::get_if<double>(&it->second)) return static_cast<int64_t>(*d);
    return fallback;
  }
  double GetFloat(const std::string& key, double fallback = 0) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    if (auto* d = std::get_if<double>(&it->second)) return *d;
    if (auto* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
    return fallback;
  }
  bool GetBool(const std::string& key, bool fallback = false) const {
    auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    if (auto* b = std::get_if<bool>(&it->second)) return *b;
    return fallback;
  }
  std::vector<std::string> GetStringList(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) return {};
    if (auto* l = std::get_if<std::vector<std::string>>(&it->second)) return *l;
    return {};
  }
  // All keys starting with `prefix` (for pass-through options such as "kafka.*").
  std::map<std::string, std::string> WithPrefix(const std::string& prefix) const {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : values_)
      if (k.rfind(prefix, 0) == 0)
        if (auto* s = std::get_if<std::string>(&v)) out[k] = *s;
    return out;
  }

 private:
  std::map<std::string, OptionValue> values_;
};

}  // namespace sluice
