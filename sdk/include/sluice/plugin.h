// Plugin registration: the one thing a plugin library must export.
//
// A plugin is a shared library that exports, through a Boost.DLL alias named
// `sluice_plugin`, a function returning a PluginDescriptor. The descriptor
// begins with the ABI version and its own size; the host checks both before it
// touches anything else and refuses a mismatch with a message naming the file.
//
// A plugin author writes ordinary C++ against Source, Sink or
// StateStoreProvider and registers the class with one macro:
//
//   static const sluice::OptionSpec kOptions[] = {
//       {"path", sluice::OptionType::kPath, nullptr, true, "directory to watch"},
//   };
//   SLUICE_REGISTER_SOURCE("file", "0.1.0", "Reads new files from a directory", kOptions, FileSource)
//
// where FileSource has a constructor FileSource(const sluice::SourceContext&)
// that may throw, and may define `static sluice::Status Validate(const sluice::Options&)`
// for checks beyond the option table. No exception ever crosses into the host:
// the macro wraps construction and every virtual call, turning an exception
// into a Status with the plugin's name in the message.
#pragma once

#include <boost/dll/alias.hpp>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>

#include "sluice/options.h"
#include "sluice/sink.h"
#include "sluice/source.h"
#include "sluice/state_store.h"
#include "sluice/version.h"

namespace sluice {

enum class PluginKind : uint32_t { kSource = 1, kSink = 2, kStateStore = 3 };

inline const char* PluginKindName(PluginKind k) {
  switch (k) {
    case PluginKind::kSource: return "source";
    case PluginKind::kSink: return "sink";
    case PluginKind::kStateStore: return "state-store";
  }
  return "?";
}

struct PluginDescriptor {
  // Checked first, before any other field is read.
  uint32_t abi_version;
  uint32_t struct_size;

  PluginKind kind;
  const char* name;
  const char* version;
  const char* description;
  const OptionSpec* options;
  uint32_t option_count;

  // Extra validation after the option table checks; may be null.
  Status (*validate)(const Options& options);
  // Exactly one of these is set, matching `kind`. They never throw; on failure
  // they return null and set *error.
  Source* (*create_source)(const SourceContext& ctx, Status* error);
  Sink* (*create_sink)(const SinkContext& ctx, Status* error);
  StateStoreProvider* (*create_state_store)(const StateStoreContext& ctx, Status* error);
};

using PluginEntryPoint = const PluginDescriptor*();

namespace detail {

inline Status FromException(const char* plugin, const char* what) {
  return Status::Internal(std::string("plugin '") + plugin + "' threw: " + what);
}

#define SLUICE_DETAIL_GUARD(plugin, ...)                                      \
  try {                                                                       \
    __VA_ARGS__;                                                              \
  } catch (const std::exception& e) {                                         \
    return ::sluice::detail::FromException(plugin, e.what());                 \
  } catch (...) {                                                             \
    return ::sluice::detail::FromException(plugin, "unknown exception");      \
  }

// Wraps a plugin's Source so that no exception reaches the host.
class GuardedSource final : public Source {
 public:
  GuardedSource(const char* plugin, std::unique_ptr<Source> inner) : plugin_(plugin), inner_(std::move(inner)) {}
  Schema schema() const override { return inner_->schema(); }
  std::string Description() const override {
    try { return inner_->Description(); } catch (...) { return plugin_; }
  }
  Result<std::optional<Offset>> LatestOffset(const std::optional<Offset>& start, ReadLimit limit) override {
    SLUICE_DETAIL_GUARD(plugin_, return inner_->LatestOffset(start, limit))
  }
  Status PrepareForAvailableNow() override { SLUICE_DETAIL_GUARD(plugin_, return inner_->PrepareForAvailableNow()) }
  Result<std::vector<std::string>> PlanPartitions(const std::optional<Offset>& start, const Offset& end) override {
    SLUICE_DETAIL_GUARD(plugin_, return inner_->PlanPartitions(start, end))
  }
  Status ReadPartition(const std::string& partition, ReadContext& ctx) override {
    SLUICE_DETAIL_GUARD(plugin_, return inner_->ReadPartition(partition, ctx))
  }
  Status Commit(const Offset& end) override { SLUICE_DETAIL_GUARD(plugin_, return inner_->Commit(end)) }
  void Stop() override {
    try { inner_->Stop(); } catch (...) {}
  }
  std::map<std::string, int64_t> Metrics() const override {
    try { return inner_->Metrics(); } catch (...) { return {}; }
  }

 private:
  const char* plugin_;
  std::unique_ptr<Source> inner_;
};

class GuardedSink final : public Sink {
 public:
  GuardedSink(const char* plugin, std::unique_ptr<Sink> inner) : plugin_(plugin), inner_(std::move(inner)) {}
  DeliveryGuarantee guarantee() const override { return inner_->guarantee(); }
  std::string Description() const override {
    try { return inner_->Description(); } catch (...) { return plugin_; }
  }
  Status AddBatch(const BatchData& data) override { SLUICE_DETAIL_GUARD(plugin_, return inner_->AddBatch(data)) }
  Status Stop() override { SLUICE_DETAIL_GUARD(plugin_, return inner_->Stop()) }

 private:
  const char* plugin_;
  std::unique_ptr<Sink> inner_;
};

template <typename T, typename = void>
struct HasValidate : std::false_type {};
template <typename T>
struct HasValidate<T, std::void_t<decltype(T::Validate(std::declval<const Options&>()))>> : std::true_type {};

template <typename T>
Status (*ValidateFn())(const Options&) {
  if constexpr (HasValidate<T>::value) return &T::Validate;
  else return nullptr;
}

template <typename T, typename Guard, typename Base, typename Ctx>
Base* Create(const char* plugin, const Ctx& ctx, Status* error) {
  try {
    return new Guard(plugin, std::make_unique<T>(ctx));
  } catch (const std::exception& e) {
    *error = Status::InvalidArgument(std::string(plugin) + ": " + e.what());
  } catch (...) {
    *error = FromException(plugin, "unknown exception");
  }
  return nullptr;
}

template <typename T>
Source* CreateSource(const char* plugin, const SourceContext& ctx, Status* error) {
  return Create<T, GuardedSource, Source>(plugin, ctx, error);
}

template <typename T>
Sink* CreateSink(const char* plugin, const SinkContext& ctx, Status* error) {
  return Create<T, GuardedSink, Sink>(plugin, ctx, error);
}

template <typename T>
StateStoreProvider* CreateStateStore(const char* plugin, const StateStoreContext& ctx, Status* error) {
  try {
    return new T(ctx);
  } catch (const std::exception& e) {
    *error = Status::InvalidArgument(std::string(plugin) + ": " + e.what());
  } catch (...) {
    *error = FromException(plugin, "unknown exception");
  }
  return nullptr;
}

}  // namespace detail
}  // namespace sluice

#define SLUICE_DETAIL_OPTION_COUNT(options) static_cast<uint32_t>(sizeof(options) / sizeof((options)[0]))

#define SLUICE_DETAIL_REGISTER(kind_, name_, version_, description_, options_, source_fn, sink_fn, state_fn, cls) \
  namespace {                                                                                                    \
  const ::sluice::PluginDescriptor* sluice_plugin_entry() {                                                      \
    static const ::sluice::PluginDescriptor descriptor = {                                                      \
        SLUICE_ABI_VERSION,                                                                                      \
        static_cast<uint32_t>(sizeof(::sluice::PluginDescriptor)),                                               \
        kind_,                                                                                                   \
        name_,                                                                                                   \
        version_,                                                                                                \
        description_,                                                                                            \
        options_,                                                                                                \
        SLUICE_DETAIL_OPTION_COUNT(options_),                                                                    \
        ::sluice::detail::ValidateFn<cls>(),                                                                     \
        source_fn,                                                                                               \
        sink_fn,                                                                                                 \
        state_fn};                                                                                               \
    return &descriptor;                                                                                          \
  }                                                                                                              \
  }                                                                                                              \
  BOOST_DLL_ALIAS(sluice_plugin_entry, sluice_plugin)

// The factories are named functions rather than lambdas so that no template
// argument list (with its commas) ever sits inside a macro argument.

// Registers `cls` (a sluice::Source with a constructor taking const SourceContext&).
#define SLUICE_REGISTER_SOURCE(name_, version_, description_, options_, cls)                               \
  namespace {                                                                                              \
  ::sluice::Source* sluice_create_source(const ::sluice::SourceContext& ctx, ::sluice::Status* error) {     \
    return ::sluice::detail::CreateSource<cls>(name_, ctx, error);                                         \
  }                                                                                                        \
  }                                                                                                        \
  SLUICE_DETAIL_REGISTER(::sluice::PluginKind::kSource, name_, version_, description_, options_,           \
                         &sluice_create_source, nullptr, nullptr, cls)

// Registers `cls` (a sluice::Sink with a constructor taking const SinkContext&).
#define SLUICE_REGISTER_SINK(name_, version_, description_, options_, cls)                                 \
  namespace {                                                                                              \
  ::sluice::Sink* sluice_create_sink(const ::sluice::SinkContext& ctx, ::sluice::Status* error) {           \
    return ::sluice::detail::CreateSink<cls>(name_, ctx, error);                                           \
  }                                                                                                        \
  }                                                                                                        \
  SLUICE_DETAIL_REGISTER(::sluice::PluginKind::kSink, name_, version_, description_, options_, nullptr,    \
                         &sluice_create_sink, nullptr, cls)

// Registers `cls` (a sluice::StateStoreProvider with a constructor taking const StateStoreContext&).
#define SLUICE_REGISTER_STATE_STORE(name_, version_, description_, options_, cls)                          \
  namespace {                                                                                              \
  ::sluice::StateStoreProvider* sluice_create_state_store(const ::sluice::StateStoreContext& ctx,          \
                                                          ::sluice::Status* error) {                       \
    return ::sluice::detail::CreateStateStore<cls>(name_, ctx, error);                                     \
  }                                                                                                        \
  }                                                                                                        \
  SLUICE_DETAIL_REGISTER(::sluice::PluginKind::kStateStore, name_, version_, description_, options_,       \
                         nullptr, nullptr, &sluice_create_state_store, cls)
