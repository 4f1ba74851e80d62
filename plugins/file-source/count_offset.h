// Offsets that count things, {"<unit>":N}: files admitted by the file source,
// batches of the memory source, lines of the socket source. Shared so that
// every counting source spells and checks its offsets the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <simdjson.h>

#include "sluice/source.h"

namespace sluice::count_offset {

inline std::string Format(const char* unit, int64_t count) {
  return "{\"" + std::string(unit) + "\":" + std::to_string(count) + "}";
}

// The count in `offset`, 0 before the first batch (no offset yet).
// `source_kind` names the source in the error, e.g. "file source".
inline Result<int64_t> Parse(const std::optional<Offset>& offset, const char* unit, const char* source_kind) {
  if (!offset) return int64_t{0};
  simdjson::dom::parser parser;
  simdjson::padded_string text(*offset);
  simdjson::dom::element doc;
  int64_t count = -1;
  if (parser.parse(text).get(doc) != simdjson::SUCCESS || doc[unit].get_int64().get(count) != simdjson::SUCCESS ||
      count < 0)
    return Status::Corruption("'" + *offset + "' is not a " + source_kind + " offset; expected {\"" + unit +
                              "\":N}");
  return count;
}

}  // namespace sluice::count_offset
