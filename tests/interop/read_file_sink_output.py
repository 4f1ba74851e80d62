#!/usr/bin/env python3
"""Reads a sluice file sink's output directory as a third-party program would,
following only docs/guarantees.md ("Reading a file sink's output"): the
committed files are those named in _sluice_metadata/<batchId> (a "v1" line,
then one JSON object per file), read in batch order; every other file is
ignored. Prints one canonical JSON line per row: JSON rows with their values
decoded (timestamps parsed, binary base64-decoded to hex), CSV rows as the
csv module's fields (binary columns decoded the same way).

usage: read_file_sink_output.py DIR jsonl|csv [binary-column ...]
"""
import base64
import csv
import datetime
import json
import os
import sys


def committed_files(directory):
    metadata = os.path.join(directory, "_sluice_metadata")
    entries = sorted((name for name in os.listdir(metadata) if name.isdigit()), key=int)
    for name in entries:
        with open(os.path.join(metadata, name), encoding="utf-8") as entry:
            lines = entry.read().splitlines()
        if not lines or lines[0] != "v1":
            sys.exit(f"{name}: manifest entry does not start with v1")
        for line in lines[1:]:
            record = json.loads(line)
            if record["action"] != "add" or record["batchId"] != int(name):
                sys.exit(f"{name}: unexpected entry {line}")
            path = os.path.join(directory, record["path"])
            if os.path.getsize(path) != record["size"]:
                sys.exit(f"{path}: size {os.path.getsize(path)}, the manifest says {record['size']}")
            yield path


def decoded(value, column, binary_columns):
    if value is None:
        return None
    if column in binary_columns:
        return base64.b64decode(value, validate=True).hex()
    if isinstance(value, str) and value.endswith("Z") and "T" in value:
        return datetime.datetime.fromisoformat(value).isoformat()
    return value


def main():
    directory, fmt, binary_columns = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    for path in committed_files(directory):
        with open(path, encoding="utf-8", newline="") as part:
            if fmt == "jsonl":
                for line in part.read().split("\n")[:-1]:
                    row = json.loads(line)
                    print(json.dumps({k: decoded(v, k, binary_columns) for k, v in row.items()}, ensure_ascii=False))
            else:
                # With binary columns named, each file starts with its header (header = true).
                header = None
                for fields in csv.reader(part):
                    if binary_columns and header is None:
                        header = fields
                    elif header:
                        fields = [base64.b64decode(f, validate=True).hex() if header[i] in binary_columns and f else f
                                  for i, f in enumerate(fields)]
                    print(json.dumps(fields, ensure_ascii=False))


main()
