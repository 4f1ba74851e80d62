// The SDK's ABI version. A plugin records the version it was compiled against
// in its descriptor; the host refuses to load a plugin with a different one.
// Bump it whenever a public class layout, virtual table or PluginDescriptor
// changes.
#pragma once

#define SLUICE_ABI_VERSION 5u
#define SLUICE_VERSION_STRING "0.1.0"
