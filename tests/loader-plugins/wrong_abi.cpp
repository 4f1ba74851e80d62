// A plugin built against a future SDK: its descriptor claims ABI version 999.
#include "sluice/plugin.h"

namespace {
const sluice::PluginDescriptor* Entry() {
  static sluice::PluginDescriptor d{};
  d.abi_version = 999;
  d.struct_size = sizeof(sluice::PluginDescriptor);
  d.kind = sluice::PluginKind::kSource;
  d.name = "future";
  return &d;
}
}  // namespace
BOOST_DLL_ALIAS(Entry, sluice_plugin)
