#include "common/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "sluice/value_format.h"

namespace sluice {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;
const char* Name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}
}  // namespace

std::string FormatIsoMillis(int64_t micros) {
  int64_t millis = micros >= 0 ? micros / 1000 : -((-micros + 999) / 1000);
  std::string s = FormatTimestamp((millis - ((millis % 1000) + 1000) % 1000) * 1000, true);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03lld", static_cast<long long>((millis % 1000 + 1000) % 1000));
  s.insert(s.size() - 1, frac);
  return s;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

bool ParseLogLevel(const std::string& name, LogLevel* out) {
  if (name == "debug") *out = LogLevel::kDebug;
  else if (name == "info") *out = LogLevel::kInfo;
  else if (name == "warn" || name == "warning") *out = LogLevel::kWarn;
  else if (name == "error") *out = LogLevel::kError;
  else return false;
  return true;
}

void Log(LogLevel level, const std::string& message) {
  if (static_cast<int>(level) < g_level.load()) return;
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
  std::string line = FormatIsoMillis(now) + " " + Name(level) + " " + message + "\n";
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace sluice
