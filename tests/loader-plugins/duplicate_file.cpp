// A second source plugin named "file": loading it next to the real one must fail.
#include "sluice/plugin.h"

namespace {
class DuplicateSource : public sluice::Source {
 public:
  explicit DuplicateSource(const sluice::SourceContext&) {}
  sluice::Schema schema() const override { return {}; }
  std::string Description() const override { return "duplicate"; }
  sluice::Result<std::optional<sluice::Offset>> LatestOffset(const std::optional<sluice::Offset>& start,
                                                             sluice::ReadLimit) override {
    return start;
  }
  sluice::Result<std::vector<std::string>> PlanPartitions(const std::optional<sluice::Offset>&,
                                                          const sluice::Offset&) override {
    return std::vector<std::string>{};
  }
  sluice::Status ReadPartition(const std::string&, sluice::ReadContext&) override { return sluice::Status::OK(); }
};
const sluice::OptionSpec kOptions[] = {
    {"unused", sluice::OptionType::kString, nullptr, false, "not used"},
};
}  // namespace

SLUICE_REGISTER_SOURCE("file", "9.9.9", "An impostor (loader test)", kOptions, DuplicateSource)
