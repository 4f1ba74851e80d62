// Named crash points for fault-injection tests, in the manner of RocksDB's
// TEST_SYNC_POINT and etcd's failpoints: compiled into every build, inert
// unless armed by the environment.
//
//   SLUICE_CRASH_AT=offset-log:after-write        crash the first time it is hit
//   SLUICE_CRASH_AT=file-sink:after-part-rename@3      crash the third time it is hit
//
// An armed point kills its own process with SIGKILL, exactly like kill -9 from
// outside: no destructor, flush or atexit handler runs. docs/reliability.md
// lists every point. The cost when unarmed is one cached getenv check.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sluice {

inline void CrashPoint(const char* name) {
  // Parsed once per process (per plugin library; each reads the same variable).
  static const std::string armed = [] {
    const char* v = std::getenv("SLUICE_CRASH_AT");
    return std::string(v ? v : "");
  }();
  if (armed.empty()) return;
  static std::atomic<long> hits{0};
  size_t at = armed.find('@');
  std::string point = armed.substr(0, at);
  if (point != name) return;
  long wanted = at == std::string::npos ? 1 : std::strtol(armed.c_str() + at + 1, nullptr, 10);
  if (++hits >= wanted) ::kill(::getpid(), SIGKILL);
}

}  // namespace sluice
