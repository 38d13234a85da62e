#!/usr/bin/env bash
# Runs every benchmark side by side in one go and prints a Markdown report.
# Usage: make bench   (or: bash bench/run.sh > /tmp/bench.md, to keep the report)
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/fnbench -fn bin/fn -fixture testdata/npm/node_modules "$@"
