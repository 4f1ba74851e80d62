// The file sink's output as a program outside sluice reads it: a Python
// reader (tests/interop/read_file_sink_output.py) that knows only what
// docs/guarantees.md says (the manifest in _sluice_metadata, JSON lines, CSV
// per RFC 4180, base64 binary, ISO timestamps) reads what `sluice run` wrote,
// with Python's own json, csv, base64 and datetime modules.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::ReadFile;
using testing::RunShell;
using testing::RunSluice;
using testing::TempDir;
using testing::WriteFile;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  return lines;
}

TEST(FileSinkInterop, PythonReadsTheCommittedJsonLinesAndCsvExactly) {
  ASSERT_EQ(RunShell("command -v python3").exit_code, 0) << "python3 is missing: run tools/install-deps";
  TempDir dir;
  // Two input files, one batch each: quotes, commas, a newline, an empty
  // string, nulls, non-ASCII text, fractional seconds, a pre-1970 instant.
  WriteFile(dir / "in/1.jsonl",
            R"({"id":1,"name":"plain","amount":0.1,"ok":true,"ts":"2024-05-01T12:00:00Z"})"
            "\n"
            R"({"id":2,"name":"say \"hi\", then\nleave","amount":1e10,"ok":false,"ts":"2024-05-01T12:00:00.5Z"})"
            "\n");
  WriteFile(dir / "in/2.jsonl",
            R"({"id":3,"name":"","amount":-0.25,"ok":null,"ts":null})"
            "\n"
            R"({"id":4,"name":null,"amount":null,"ok":true,"ts":"1969-12-31T23:59:59Z"})"
            "\n"
            R"({"id":5,"name":"ünïcödé ✓","amount":100,"ok":false,"ts":"2024-02-29T00:00:00.000123Z"})"
            "\n");
  ASSERT_EQ(RunShell("touch -d 2024-01-01 '" + (dir / "in/1.jsonl") + "' && touch -d 2024-01-02 '" +
                     (dir / "in/2.jsonl") + "'")
                .exit_code,
            0);
  WriteFile(dir / "p.toml", R"toml(
[pipeline]
name = "interop"
trigger = "available_now"
checkpoint = "checkpoint"

[sources.rows]
type = "file"
path = "in"
format = "jsonl"
schema = "id BIGINT, name STRING, amount DOUBLE, ok BOOLEAN, ts TIMESTAMP"
max_files_per_trigger = 1

[[steps]]
name = "with_raw"
input = "rows"
select = ["*", "CAST(name AS BINARY) AS raw"]

[sinks.json]
type = "file"
input = "with_raw"
path = "out-jsonl"
format = "jsonl"

[sinks.csv]
type = "file"
input = "with_raw"
path = "out-csv"
format = "csv"
header = true
)toml");
  auto run = RunSluice({"run", dir / "p.toml"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // A part file the manifest does not name (as a crash before the manifest
  // entry leaves one) is not output; the reader must skip it.
  WriteFile(dir / "out-jsonl/part-00009.jsonl", "{\"id\":99}\n");

  const std::string reader = std::string(SLUICE_TEST_SOURCE_DIR) + "/tests/interop/read_file_sink_output.py";
  auto json = RunShell("python3 '" + reader + "' '" + (dir / "out-jsonl") + "' jsonl raw");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  // Timestamps parsed by datetime, binary decoded by base64 (shown as hex).
  EXPECT_EQ(Lines(json.out),
            (std::vector<std::string>{
                R"({"id": 1, "name": "plain", "amount": 0.1, "ok": true, "ts": "2024-05-01T12:00:00+00:00", "raw": "706c61696e"})",
                R"({"id": 2, "name": "say \"hi\", then\nleave", "amount": 10000000000.0, "ok": false, "ts": "2024-05-01T12:00:00.500000+00:00", "raw": "73617920226869222c207468656e0a6c65617665"})",
                R"({"id": 3, "name": "", "amount": -0.25, "ok": null, "ts": null, "raw": ""})",
                R"({"id": 4, "name": null, "amount": null, "ok": true, "ts": "1969-12-31T23:59:59+00:00", "raw": null})",
                R"({"id": 5, "name": "ünïcödé ✓", "amount": 100.0, "ok": false, "ts": "2024-02-29T00:00:00.000123+00:00", "raw": "c3bc6ec3af63c3b664c3a920e29c93"})",
            }));

  auto csv = RunShell("python3 '" + reader + "' '" + (dir / "out-csv") + "' csv raw");
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  // Every file starts with the header; null and the empty string are both
  // empty fields to the csv module (the file tells them apart: `""` is the
  // empty string).
  EXPECT_EQ(Lines(csv.out),
            (std::vector<std::string>{
                R"(["id", "name", "amount", "ok", "ts", "raw"])",
                R"(["1", "plain", "0.1", "true", "2024-05-01 12:00:00", "706c61696e"])",
                R"(["2", "say \"hi\", then\nleave", "10000000000.0", "false", "2024-05-01 12:00:00.5", "73617920226869222c207468656e0a6c65617665"])",
                R"(["id", "name", "amount", "ok", "ts", "raw"])",
                R"(["3", "", "-0.25", "", "", ""])",
                R"(["4", "", "", "true", "1969-12-31 23:59:59", ""])",
                R"(["5", "ünïcödé ✓", "100.0", "false", "2024-02-29 00:00:00.000123", "c3bc6ec3af63c3b664c3a920e29c93"])",
            }));
  EXPECT_EQ(Lines(ReadFile(dir / "out-csv/part-00001.csv"))[1], R"(3,"",-0.25,,,"")");
}

}  // namespace
}  // namespace sluice
