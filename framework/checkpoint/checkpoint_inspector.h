// `sluice checkpoint inspect DIR`: a readable account of a checkpoint: the
// query id, each retained batch with its offsets and whether it committed,
// and, for file sinks, the batches and files their manifests name.
#pragma once

#include <string>

#include "sluice/status.h"

namespace sluice {

Result<std::string> InspectCheckpoint(const std::string& dir);

}  // namespace sluice
