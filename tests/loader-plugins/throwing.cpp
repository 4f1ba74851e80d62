// A source whose constructor throws when asked to, and whose every call
// throws otherwise: no exception may reach the host.
#include <stdexcept>

#include "sluice/plugin.h"

namespace {

class ThrowingSource : public sluice::Source {
 public:
  explicit ThrowingSource(const sluice::SourceContext& ctx) {
    if (ctx.options.GetBool("throw_in_constructor")) throw std::runtime_error("constructor refused");
  }
  sluice::Schema schema() const override { return sluice::Schema({{"value", sluice::DataType::kString}}); }
  std::string Description() const override { throw std::runtime_error("no description"); }
  sluice::Result<std::optional<sluice::Offset>> LatestOffset(const std::optional<sluice::Offset>&,
                                                             sluice::ReadLimit) override {
    throw std::runtime_error("latest offset exploded");
  }
  sluice::Result<std::vector<std::string>> PlanPartitions(const std::optional<sluice::Offset>&,
                                                          const sluice::Offset&) override {
    throw 7;  // not even a std::exception
  }
  sluice::Status ReadPartition(const std::string&, sluice::ReadContext&) override {
    throw std::logic_error("read exploded");
  }
};

const sluice::OptionSpec kOptions[] = {
    {"throw_in_constructor", sluice::OptionType::kBool, "false", false, "throw from the constructor"},
};

}  // namespace

SLUICE_REGISTER_SOURCE("throwing", "1.0.0", "Throws from everything (loader test)", kOptions, ThrowingSource)
