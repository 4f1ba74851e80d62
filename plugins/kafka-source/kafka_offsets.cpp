// Offsets and ranges of the "kafka" source: JSON forms, the per-trigger limit,
// planning and the data-loss check (see kafka_offsets.h).
#include "kafka_offsets.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "sluice/value_format.h"

namespace sluice::kafka_source {
namespace {

Result<int32_t> ParsePartitionNumber(std::string_view text, const std::string& context) {
  int32_t partition = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), partition);
  if (ec != std::errc() || end != text.data() + text.size() || partition < 0)
    return Status::InvalidArgument(context + ": '" + std::string(text) + "' is not a partition number");
  return partition;
}

Result<simdjson::dom::object> ParseObject(simdjson::dom::parser& parser, const std::string& json,
                                          const std::string& context) {
  simdjson::dom::element doc;
  if (auto error = parser.parse(json).get(doc); error != simdjson::SUCCESS)
    return Status::InvalidArgument(context + ": not valid JSON (" + simdjson::error_message(error) + "): " + json);
  simdjson::dom::object object;
  if (doc.get_object().get(object) != simdjson::SUCCESS)
    return Status::InvalidArgument(context + ": expected a JSON object, got: " + json);
  return object;
}

}  // namespace

std::string FormatOffsets(const PartitionOffsets& offsets) {
  std::string out = "{";
  const std::string* current_topic = nullptr;
  for (const auto& [tp, offset] : offsets) {
    if (current_topic == nullptr || *current_topic != tp.topic) {
      if (current_topic != nullptr) out += "},";
      AppendJsonString(out, tp.topic);
      out += ":{";
      current_topic = &tp.topic;
    } else {
      out += ',';
    }
    out += '"' + std::to_string(tp.partition) + "\":" + std::to_string(offset);
  }
  if (current_topic != nullptr) out += '}';
  out += '}';
  return out;
}

Result<PartitionOffsets> ParseOffsets(const std::string& json) {
  simdjson::dom::parser parser;
  auto topics = ParseObject(parser, json, "kafka offsets");
  if (!topics.ok()) return topics.status();
  PartitionOffsets offsets;
  for (auto [topic, partitions_value] : *topics) {
    simdjson::dom::object partitions;
    if (partitions_value.get_object().get(partitions) != simdjson::SUCCESS)
      return Status::InvalidArgument("kafka offsets: topic '" + std::string(topic) +
                                     "' must map partition numbers to offsets, as {\"" + std::string(topic) +
                                     "\":{\"0\":23}}; got: " + json);
    for (auto [partition_text, offset_value] : partitions) {
      auto partition = ParsePartitionNumber(partition_text, "kafka offsets for topic '" + std::string(topic) + "'");
      if (!partition.ok()) return partition.status();
      int64_t offset = 0;
      if (offset_value.get_int64().get(offset) != simdjson::SUCCESS)
        return Status::InvalidArgument("kafka offsets: the offset of topic '" + std::string(topic) + "' partition " +
                                       std::to_string(*partition) + " is not an integer; got: " + json);
      offsets[{std::string(topic), *partition}] = offset;
    }
  }
  return offsets;
}

Result<std::vector<TopicPartition>> ParseAssignment(const std::string& json) {
  simdjson::dom::parser parser;
  auto topics = ParseObject(parser, json, "assign");
  if (!topics.ok()) return topics.status();
  std::vector<TopicPartition> assignment;
  for (auto [topic, partitions_value] : *topics) {
    simdjson::dom::array partitions;
    if (partitions_value.get_array().get(partitions) != simdjson::SUCCESS)
      return Status::InvalidArgument("assign: topic '" + std::string(topic) +
                                     "' must map to an array of partition numbers, as {\"t\":[0,1]}; got: " + json);
    for (auto partition_value : partitions) {
      int64_t partition = -1;
      if (partition_value.get_int64().get(partition) != simdjson::SUCCESS || partition < 0 ||
          partition > std::numeric_limits<int32_t>::max())
        return Status::InvalidArgument("assign: topic '" + std::string(topic) +
                                       "' lists something that is not a partition number; got: " + json);
      assignment.push_back({std::string(topic), static_cast<int32_t>(partition)});
    }
  }
  std::sort(assignment.begin(), assignment.end());
  assignment.erase(std::unique(assignment.begin(), assignment.end()), assignment.end());
  if (assignment.empty()) return Status::InvalidArgument("assign: names no partition; give {\"topic\":[0,1]}");
  return assignment;
}

Result<OffsetSpec> ParseOffsetSpec(const std::string& option_name, const std::string& value) {
  OffsetSpec spec;
  if (value == "earliest") {
    spec.kind = OffsetSpec::Kind::kEarliest;
    return spec;
  }
  if (value == "latest") {
    spec.kind = OffsetSpec::Kind::kLatest;
    return spec;
  }
  auto offsets = ParseOffsets(value);
  if (!offsets.ok())
    return Status::InvalidArgument(option_name + ": expected \"earliest\", \"latest\" or JSON such as " +
                                   "{\"topic\":{\"0\":23,\"1\":-2}} (-2 earliest, -1 latest); " +
                                   offsets.status().message());
  for (const auto& [tp, offset] : *offsets)
    if (offset < kEarliestMarker)
      return Status::InvalidArgument(option_name + ": offset " + std::to_string(offset) + " of topic '" + tp.topic +
                                     "' partition " + std::to_string(tp.partition) +
                                     " is negative (only -2, earliest, and -1, latest, are allowed)");
  spec.kind = OffsetSpec::Kind::kExplicit;
  spec.explicit_offsets = std::move(offsets).value();
  return spec;
}

PartitionOffsets ApplyRecordLimit(const PartitionOffsets& start, const PartitionOffsets& end, int64_t limit,
                                  int64_t new_partition_start) {
  std::map<TopicPartition, int64_t> lag;
  double total = 0;
  for (const auto& [tp, until] : end) {
    auto it = start.find(tp);
    int64_t from = it == start.end() ? new_partition_start : it->second;
    if (until > from) {
      lag[tp] = until - from;
      total += static_cast<double>(until - from);
    }
  }
  if (total < 1) return end;
  PartitionOffsets limited = end;
  for (auto& [tp, until] : limited) {
    auto lag_it = lag.find(tp);
    if (lag_it == lag.end()) continue;
    auto start_it = start.find(tp);
    int64_t from = start_it == start.end() ? new_partition_start : start_it->second;
    double share = static_cast<double>(limit) * (static_cast<double>(lag_it->second) / total);
    // Rounding up below one record keeps a small partition from starving.
    auto records = static_cast<int64_t>(share < 1 ? std::ceil(share) : std::floor(share));
    int64_t capped = records > std::numeric_limits<int64_t>::max() - from ? std::numeric_limits<int64_t>::max()
                                                                           : from + records;
    until = std::min(until, capped);
  }
  return limited;
}

std::vector<OffsetRange> PlanRanges(const PartitionOffsets& start, const PartitionOffsets& end, int64_t min_pieces) {
  std::vector<OffsetRange> ranges;
  int64_t total = 0;
  for (const auto& [tp, until] : end) {
    auto it = start.find(tp);
    int64_t from = it == start.end() ? 0 : it->second;
    if (until > from) {
      ranges.push_back({tp, from, until});
      total += until - from;
    }
  }
  if (min_pieces <= 0 || static_cast<int64_t>(ranges.size()) >= min_pieces) return ranges;
  std::vector<OffsetRange> pieces;
  for (const OffsetRange& range : ranges) {
    double share = static_cast<double>(range.size()) / static_cast<double>(total) * static_cast<double>(min_pieces);
    int64_t parts = std::clamp<int64_t>(std::llround(share), 1, range.size());
    for (int64_t i = 0; i < parts; ++i) {
      int64_t from = range.from + range.size() * i / parts;
      int64_t until = range.from + range.size() * (i + 1) / parts;
      pieces.push_back({range.partition, from, until});
    }
  }
  return pieces;
}

std::string FormatRange(const OffsetRange& range) {
  std::string out = "{\"topic\":";
  AppendJsonString(out, range.partition.topic);
  out += ",\"partition\":" + std::to_string(range.partition.partition) + ",\"from\":" + std::to_string(range.from) +
         ",\"until\":" + std::to_string(range.until) + "}";
  return out;
}

Result<OffsetRange> ParseRange(const std::string& text) {
  simdjson::dom::parser parser;
  auto object = ParseObject(parser, text, "kafka read piece");
  if (!object.ok()) return object.status();
  std::string_view topic;
  int64_t partition = 0;
  OffsetRange range;
  if ((*object)["topic"].get_string().get(topic) != simdjson::SUCCESS ||
      (*object)["partition"].get_int64().get(partition) != simdjson::SUCCESS ||
      (*object)["from"].get_int64().get(range.from) != simdjson::SUCCESS ||
      (*object)["until"].get_int64().get(range.until) != simdjson::SUCCESS)
    return Status::InvalidArgument("kafka read piece: expected {\"topic\",\"partition\",\"from\",\"until\"}; got: " +
                                   text);
  range.partition = {std::string(topic), static_cast<int32_t>(partition)};
  return range;
}

std::optional<std::pair<int64_t, int64_t>> LostRecords(const OffsetRange& range, int64_t low_watermark) {
  if (low_watermark <= range.from) return std::nullopt;
  return std::make_pair(range.from, std::min(low_watermark, range.until));
}

std::string DescribeDataLoss(const OffsetRange& range, int64_t lost_from, int64_t lost_until, int64_t low_watermark) {
  return "records [" + std::to_string(lost_from) + ", " + std::to_string(lost_until) + ") of topic '" +
         range.partition.topic + "' partition " + std::to_string(range.partition.partition) +
         " were deleted (retention or a deleted topic) before they were read: the earliest available offset is " +
         std::to_string(low_watermark);
}

}  // namespace sluice::kafka_source
