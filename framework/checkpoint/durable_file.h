// Durable, atomic file writes: the one way the checkpoint writes anything.
// The functions themselves live in the SDK (sluice/durable_file.h), shared
// with the plugins that keep files of their own; reading lives here.
#pragma once

#include <string>

#include "sluice/durable_file.h"
#include "sluice/status.h"

namespace sluice {

Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace sluice
