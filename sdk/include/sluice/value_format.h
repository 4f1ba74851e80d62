// Text forms of values shared by the engine and plugins: timestamps, JSON
// strings, and the rendering of one cell for csv, jsonl and console output, so
// every sink and every parser agrees on one spelling.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/record_batch.h"

namespace sluice {

namespace detail {
// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
inline int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
inline void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}
}  // namespace detail

// Microseconds since the epoch, UTC, as "2024-05-01 12:00:00" with a fraction
// only when non-zero ("...:00.5", "...:00.000123"). With iso = true the
// separator is 'T' and a 'Z' is appended: "2024-05-01T12:00:00Z".
inline std::string FormatTimestamp(int64_t micros, bool iso = false) {
  int64_t secs = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
  int64_t frac = micros - secs * 1000000;
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t sod = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  detail::CivilFromDays(days, &y, &m, &d);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u%c%02lld:%02lld:%02lld", static_cast<long long>(y), m, d,
                        iso ? 'T' : ' ', static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                        static_cast<long long>(sod % 60));
  std::string s(buf, static_cast<size_t>(n));
  if (frac) {
    char f[24];
    std::snprintf(f, sizeof f, "%06lld", static_cast<long long>(frac));
    std::string fs(f);
    while (!fs.empty() && fs.back() == '0') fs.pop_back();
    s += "." + fs;
  }
  if (iso) s += "Z";
  return s;
}

// Parses "2024-05-01", "2024-05-01 12:00:00", "2024-05-01T12:00:00.123456",
// each optionally followed by "Z" or an offset "+02:00"/"-0530". Without an
// offset the time is UTC. Returns microseconds since the epoch.
inline std::optional<int64_t> ParseTimestamp(std::string_view s) {
  size_t i = 0;
  auto digits = [&](int n, int64_t* out) {
    int64_t v = 0;
    for (int k = 0; k < n; ++k) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i++] - '0');
    }
    *out = v;
    return true;
  };
  while (i < s.size() && s[i] == ' ') ++i;
  int64_t y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
  bool neg_year = false;
  if (i < s.size() && s[i] == '-') { neg_year = true; ++i; }
  if (!digits(4, &y)) return std::nullopt;
  if (neg_year) y = -y;
  if (i >= s.size() || s[i++] != '-' || !digits(2, &mo) || i >= s.size() || s[i++] != '-' || !digits(2, &d))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  if (i < s.size() && (s[i] == ' ' || s[i] == 'T')) {
    ++i;
    if (!digits(2, &h) || i >= s.size() || s[i++] != ':' || !digits(2, &mi)) return std::nullopt;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!digits(2, &se)) return std::nullopt;
      if (i < s.size() && s[i] == '.') {
        ++i;
        int n = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
          if (n < 6) { frac = frac * 10 + (s[i] - '0'); ++n; }
          ++i;
        }
        if (n == 0) return std::nullopt;
        for (; n < 6; ++n) frac *= 10;
      }
    }
    if (h > 23 || mi > 59 || se > 60) return std::nullopt;
  }
  int64_t offset_secs = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i++] == '-' ? -1 : 1;
    int64_t oh, om = 0;
    if (!digits(2, &oh)) return std::nullopt;
    if (i < s.size() && s[i] == ':') ++i;
    if (i < s.size()) { if (!digits(2, &om)) return std::nullopt; }
    offset_secs = sign * (oh * 3600 + om * 60);
  }
  while (i < s.size() && s[i] == ' ') ++i;
  if (i != s.size()) return std::nullopt;
  int64_t days = detail::DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_secs;
  return secs * 1000000 + frac;
}

// Appends `s` as a JSON string literal, quotes included.
inline void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// Shortest text that reads back as the same double ("0.1", "1.0E10" is avoided:
// "10000000000.0"). Integral values keep a ".0" so the type survives a round trip.
inline std::string FormatDouble(double v) {
  if (v != v) return "NaN";
  if (v == 1.0 / 0.0) return "Infinity";
  if (v == -1.0 / 0.0) return "-Infinity";
  char buf[40];
  for (int prec = 15; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

// Base64 (RFC 4648, with padding): how binary values are written in text formats.
inline void AppendBase64(std::string& out, std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out.reserve(out.size() + (in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[n >> 18]; out += kAlphabet[(n >> 12) & 63]; out += kAlphabet[(n >> 6) & 63]; out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    out += kAlphabet[n >> 18]; out += kAlphabet[(n >> 12) & 63]; out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += kAlphabet[n >> 18]; out += kAlphabet[(n >> 12) & 63]; out += kAlphabet[(n >> 6) & 63]; out += '=';
  }
}

inline std::string Base64Encode(std::string_view in) {
  std::string out;
  AppendBase64(out, in);
  return out;
}

// Appends the bytes base64 text `in` decodes to (RFC 4648, padding required);
// false, with `out` partly written, if `in` is not such text.
inline bool AppendBase64Decoded(std::string_view in, std::string& out) {
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    int a = sextet(in[i]), b = sextet(in[i + 1]);
    int c = (last && in[i + 2] == '=') ? -2 : sextet(in[i + 2]);
    int d = (last && in[i + 3] == '=') ? -2 : sextet(in[i + 3]);
    if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2)) return false;
    uint32_t n = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c < 0 ? 0 : c) << 6) | uint32_t(d < 0 ? 0 : d);
    out.push_back(static_cast<char>(n >> 16));
    if (c >= 0) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (d >= 0) out.push_back(static_cast<char>(n & 0xff));
  }
  return true;
}

// Plain text of one cell: what the console and csv show. Null is "" here;
// callers decide how to show null ("null" on the console, empty in csv).
inline void AppendCellText(std::string& out, const Column& c, int64_t i) {
  if (c.is_null(i)) return;
  switch (c.type()) {
    case DataType::kBool: out += c.bool_at(i) ? "true" : "false"; break;
    case DataType::kInt64: out += std::to_string(c.int64_at(i)); break;
    case DataType::kFloat64: out += FormatDouble(c.float64_at(i)); break;
    case DataType::kString: out += c.string_at(i); break;
    case DataType::kBinary: out += Base64Encode(c.string_at(i)); break;
    case DataType::kTimestamp: out += FormatTimestamp(c.int64_at(i)); break;
  }
}

// One cell as a JSON value: null, true, 42, 1.5, "text"; binary as base64
// text, timestamps as ISO-8601 UTC text ("2024-05-01T12:00:00Z"), non-finite
// doubles as strings ("NaN"), as Spark's JSON writer does.
inline void AppendCellJson(std::string& out, const Column& c, int64_t i) {
  if (c.is_null(i)) { out += "null"; return; }
  switch (c.type()) {
    case DataType::kBool: out += c.bool_at(i) ? "true" : "false"; break;
    case DataType::kInt64: out += std::to_string(c.int64_at(i)); break;
    case DataType::kFloat64: {
      double v = c.float64_at(i);
      if (v != v || v == 1.0 / 0.0 || v == -1.0 / 0.0) AppendJsonString(out, FormatDouble(v));
      else out += FormatDouble(v);
      break;
    }
    case DataType::kString: AppendJsonString(out, c.string_at(i)); break;
    case DataType::kBinary: AppendJsonString(out, Base64Encode(c.string_at(i))); break;
    case DataType::kTimestamp: AppendJsonString(out, FormatTimestamp(c.int64_at(i), true)); break;
  }
}

// Row `row` of `batch` as one JSON object, fields in schema order:
// {"word":"a","count":2}. The jsonl file sink writes exactly this.
inline void AppendRowJson(std::string& out, const RecordBatch& batch, int64_t row) {
  out.push_back('{');
  for (int c = 0; c < batch.num_columns(); ++c) {
    if (c) out.push_back(',');
    AppendJsonString(out, batch.schema()->field(c).name);
    out.push_back(':');
    AppendCellJson(out, batch.column(c), row);
  }
  out.push_back('}');
}

}  // namespace sluice
