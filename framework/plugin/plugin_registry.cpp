#include "plugin/plugin_registry.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace sluice {

namespace fs = std::filesystem;

const OptionSpec* LoadedPlugin::FindOption(std::string_view key) const {
  const OptionSpec* wildcard = nullptr;
  for (uint32_t i = 0; i < descriptor->option_count; ++i) {
    const OptionSpec& o = descriptor->options[i];
    std::string_view k = o.key;
    if (k == key) return &o;
    if (k.size() >= 2 && k.substr(k.size() - 2) == ".*" && key.substr(0, k.size() - 1) == k.substr(0, k.size() - 1))
      wildcard = &o;
  }
  return wildcard;
}

std::vector<std::string> PluginRegistry::SearchPath(const std::vector<std::string>& explicit_dirs) {
  std::vector<std::string> dirs = explicit_dirs;
  if (const char* env = std::getenv("SLUICE_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string d;
    while (std::getline(ss, d, ':'))
      if (!d.empty()) dirs.push_back(d);
  }
  dirs.push_back(SLUICE_DEFAULT_PLUGIN_DIR);
  return dirs;
}

Status PluginRegistry::LoadDirectories(const std::vector<std::string>& dirs) {
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> libs;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string file = entry.path().filename().string();
      if (file.rfind("libsluice-", 0) == 0 && entry.path().extension() == ".so") libs.push_back(entry.path().string());
    }
    std::sort(libs.begin(), libs.end());  // deterministic: the same duplicate wins every time
    for (const auto& lib : libs) {
      // A plugin earlier on the search path shadows a later one with the same
      // file name, as PATH does for programs.
      bool shadowed = false;
      for (const auto& [key, p] : plugins_)
        if (fs::path(p.path).filename() == fs::path(lib).filename()) shadowed = true;
      if (shadowed) continue;
      SLUICE_RETURN_IF_ERROR(LoadLibrary(lib));
    }
  }
  return Status::OK();
}

Status PluginRegistry::LoadLibrary(const std::string& path) {
  auto lib = std::make_shared<boost::dll::shared_library>();
  boost::system::error_code ec;
  lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) return Status::IOError("cannot load plugin " + path + ": " + ec.message());
  if (!lib->has("sluice_plugin"))
    return Status::InvalidArgument("cannot load plugin " + path +
                                   ": it does not export 'sluice_plugin' (was it built with "
                                   "SLUICE_REGISTER_SOURCE/SINK/STATE_STORE?)");
  const PluginDescriptor* d = nullptr;
  try {
    auto& entry = lib->get_alias<PluginEntryPoint>("sluice_plugin");
    d = entry();
  } catch (const std::exception& e) {
    return Status::InvalidArgument("cannot load plugin " + path + ": " + e.what());
  }
  if (!d) return Status::InvalidArgument("cannot load plugin " + path + ": its descriptor is null");
  // Only these two fields are read before the checks pass.
  if (d->abi_version != SLUICE_ABI_VERSION)
    return Status::InvalidArgument("cannot load plugin " + path + ": it was built for sluice ABI version " +
                                   std::to_string(d->abi_version) + " but this sluice has ABI version " +
                                   std::to_string(SLUICE_ABI_VERSION) +
                                   "; rebuild the plugin against this sluice's SDK");
  if (d->struct_size != sizeof(PluginDescriptor))
    return Status::InvalidArgument("cannot load plugin " + path + ": its descriptor is " +
                                   std::to_string(d->struct_size) + " bytes, expected " +
                                   std::to_string(sizeof(PluginDescriptor)) + "; rebuild it against this SDK");
  if (!d->name || !*d->name) return Status::InvalidArgument("cannot load plugin " + path + ": it has no name");
  bool factory_ok = (d->kind == PluginKind::kSource && d->create_source) ||
                    (d->kind == PluginKind::kSink && d->create_sink) ||
                    (d->kind == PluginKind::kStateStore && d->create_state_store);
  if (!factory_ok)
    return Status::InvalidArgument("cannot load plugin " + path + ": its descriptor has no factory for kind " +
                                   std::to_string(static_cast<uint32_t>(d->kind)));
  auto key = std::make_pair(d->kind, std::string(d->name));
  if (auto it = plugins_.find(key); it != plugins_.end())
    return Status::InvalidArgument("cannot load plugin " + path + ": a " + PluginKindName(d->kind) + " named '" +
                                   d->name + "' is already loaded from " + it->second.path);
  plugins_[key] = LoadedPlugin{path, d, std::move(lib)};
  return Status::OK();
}

const LoadedPlugin* PluginRegistry::Find(PluginKind kind, std::string_view name) const {
  auto it = plugins_.find(std::make_pair(kind, std::string(name)));
  return it == plugins_.end() ? nullptr : &it->second;
}

std::vector<const LoadedPlugin*> PluginRegistry::All() const {
  std::vector<const LoadedPlugin*> out;
  for (const auto& [k, p] : plugins_) out.push_back(&p);
  return out;
}

std::vector<std::string> PluginRegistry::Names(PluginKind kind) const {
  std::vector<std::string> out;
  for (const auto& [k, p] : plugins_)
    if (k.first == kind) out.push_back(k.second);
  return out;
}

Result<int64_t> ParseDuration(std::string_view text) {
  std::string s(text);
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  size_t num_start = i;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (num_start == i)
    return Status::InvalidArgument("'" + s + "' is not a duration; expected a number and a unit, e.g. '10 seconds'");
  double amount = std::strtod(s.substr(num_start, i - num_start).c_str(), nullptr);
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  std::string unit;
  for (; i < s.size(); ++i) unit.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(s[i]))));
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  double micros_per;
  if (unit == "us" || unit == "microsecond" || unit == "microseconds") micros_per = 1;
  else if (unit == "ms" || unit == "millisecond" || unit == "milliseconds") micros_per = 1e3;
  else if (unit == "s" || unit == "sec" || unit == "secs" || unit == "second" || unit == "seconds") micros_per = 1e6;
  else if (unit == "m" || unit == "min" || unit == "mins" || unit == "minute" || unit == "minutes") micros_per = 60e6;
  else if (unit == "h" || unit == "hour" || unit == "hours") micros_per = 3600e6;
  else if (unit == "d" || unit == "day" || unit == "days") micros_per = 86400e6;
  else if (unit == "w" || unit == "week" || unit == "weeks") micros_per = 7 * 86400e6;
  else
    return Status::InvalidArgument("'" + s + "' has an unknown unit '" + unit +
                                   "'; expected ms, seconds, minutes, hours, days or weeks");
  return static_cast<int64_t>(std::llround(amount * micros_per));
}

Result<Options> PluginRegistry::ResolveOptions(const LoadedPlugin& plugin,
                                               const std::map<std::string, OptionValue>& given,
                                               std::string* key_error) {
  Options out;
  const std::string who = std::string(PluginKindName(plugin.kind())) + " '" + plugin.name() + "'";
  auto fail = [&](const std::string& key, const std::string& msg) -> Status {
    if (key_error) *key_error = key;
    return Status::InvalidArgument(msg);
  };
  for (const auto& [key, value] : given) {
    const OptionSpec* spec = plugin.FindOption(key);
    if (!spec) {
      std::string known;
      for (uint32_t i = 0; i < plugin.descriptor->option_count; ++i)
        known += std::string(i ? ", " : "") + plugin.descriptor->options[i].key;
      return fail(key, "unknown option '" + key + "' for " + who + "; expected one of: " +
                           (known.empty() ? "(no options)" : known));
    }
    auto type_error = [&] {
      std::string type = OptionTypeName(spec->type);
      const char* article = std::string("aeiou").find(type[0]) != std::string::npos ? " must be an " : " must be a ";
      return fail(key, "option '" + key + "' of " + who + article + type);
    };
    switch (spec->type) {
      case OptionType::kString:
      case OptionType::kPath: {
        auto* s = std::get_if<std::string>(&value);
        if (!s) return type_error();
        if (spec->allowed) {
          std::string allowed = spec->allowed;
          bool ok = false;
          std::stringstream ss(allowed);
          std::string a;
          while (std::getline(ss, a, '|'))
            if (a == *s) ok = true;
          if (!ok) {
            std::string pretty = allowed;
            std::replace(pretty.begin(), pretty.end(), '|', ',');
            return fail(key, "option '" + key + "' of " + who + " is '" + *s + "'; expected one of: " + pretty);
          }
        }
        out.Set(key, *s);
        break;
      }
      case OptionType::kInt:
        if (!std::holds_alternative<int64_t>(value)) return type_error();
        out.Set(key, value);
        break;
      case OptionType::kFloat:
        if (auto* i = std::get_if<int64_t>(&value)) out.Set(key, static_cast<double>(*i));
        else if (std::holds_alternative<double>(value)) out.Set(key, value);
        else return type_error();
        break;
      case OptionType::kBool:
        if (!std::holds_alternative<bool>(value)) return type_error();
        out.Set(key, value);
        break;
      case OptionType::kDuration: {
        auto* s = std::get_if<std::string>(&value);
        if (!s) return type_error();
        auto d = ParseDuration(*s);
        if (!d.ok()) return fail(key, "option '" + key + "' of " + who + ": " + d.status().message());
        out.Set(key, *d);
        break;
      }
      case OptionType::kStringList:
        if (!std::holds_alternative<std::vector<std::string>>(value)) return type_error();
        out.Set(key, value);
        break;
    }
  }
  for (uint32_t i = 0; i < plugin.descriptor->option_count; ++i) {
    const OptionSpec& o = plugin.descriptor->options[i];
    std::string key = o.key;
    if (key.size() >= 2 && key.substr(key.size() - 2) == ".*") continue;
    if (out.Has(key)) continue;
    if (o.required) return fail(key, "missing required option '" + key + "' for " + who + " (" + o.description + ")");
    if (!o.default_value) continue;
    std::string dv = o.default_value;
    switch (o.type) {
      case OptionType::kString:
      case OptionType::kPath: out.Set(key, dv); break;
      case OptionType::kInt: out.Set(key, static_cast<int64_t>(std::strtoll(dv.c_str(), nullptr, 10))); break;
      case OptionType::kFloat: out.Set(key, std::strtod(dv.c_str(), nullptr)); break;
      case OptionType::kBool: out.Set(key, dv == "true"); break;
      case OptionType::kDuration: {
        auto d = ParseDuration(dv);
        if (d.ok()) out.Set(key, *d);
        break;
      }
      case OptionType::kStringList: out.Set(key, std::vector<std::string>{}); break;
    }
  }
  if (plugin.descriptor->validate) {
    Status st = plugin.descriptor->validate(out);
    if (!st.ok()) return fail("", who + ": " + st.message());
  }
  return out;
}

Result<std::shared_ptr<Source>> PluginRegistry::CreateSource(std::string_view plugin, const SourceContext& ctx) const {
  const LoadedPlugin* p = Find(PluginKind::kSource, plugin);
  if (!p) return Status::NotFound("no source plugin named '" + std::string(plugin) + "'");
  Status error;
  Source* raw = p->descriptor->create_source(ctx, &error);
  if (!raw) return error.ok() ? Status::Internal("source '" + std::string(plugin) + "' returned nothing") : error;
  auto lib = p->library;  // the object's code lives in the library: keep it loaded while the object lives
  return std::shared_ptr<Source>(raw, [lib](Source* s) { delete s; });
}

Result<std::shared_ptr<Sink>> PluginRegistry::CreateSink(std::string_view plugin, const SinkContext& ctx) const {
  const LoadedPlugin* p = Find(PluginKind::kSink, plugin);
  if (!p) return Status::NotFound("no sink plugin named '" + std::string(plugin) + "'");
  Status error;
  Sink* raw = p->descriptor->create_sink(ctx, &error);
  if (!raw) return error.ok() ? Status::Internal("sink '" + std::string(plugin) + "' returned nothing") : error;
  auto lib = p->library;
  return std::shared_ptr<Sink>(raw, [lib](Sink* s) { delete s; });
}

Result<std::shared_ptr<StateStoreProvider>> PluginRegistry::CreateStateStore(std::string_view plugin,
                                                                             const StateStoreContext& ctx) const {
  const LoadedPlugin* p = Find(PluginKind::kStateStore, plugin);
  if (!p) return Status::NotFound("no state store plugin named '" + std::string(plugin) + "'");
  Status error;
  StateStoreProvider* raw = p->descriptor->create_state_store(ctx, &error);
  if (!raw)
    return error.ok() ? Status::Internal("state store '" + std::string(plugin) + "' returned nothing") : error;
  auto lib = p->library;
  return std::shared_ptr<StateStoreProvider>(raw, [lib](StateStoreProvider* s) { delete s; });
}

}  // namespace sluice
