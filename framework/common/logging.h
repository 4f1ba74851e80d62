// The engine's log: one line per event on stderr, "2024-05-01T12:00:00.123Z INFO message".
// stdout is left to sinks (the console sink) so the two never interleave.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "2024-05-01T12:00:00.123Z": ISO-8601 UTC with milliseconds, as Spark's progress events spell time.
std::string FormatIsoMillis(int64_t micros);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Returns false for an unknown name; accepts debug, info, warn, error.
bool ParseLogLevel(const std::string& name, LogLevel* out);
void Log(LogLevel level, const std::string& message);

inline void LogDebug(const std::string& m) { Log(LogLevel::kDebug, m); }
inline void LogInfo(const std::string& m) { Log(LogLevel::kInfo, m); }
inline void LogWarn(const std::string& m) { Log(LogLevel::kWarn, m); }
inline void LogError(const std::string& m) { Log(LogLevel::kError, m); }

}  // namespace sluice
