#!/usr/bin/env bash
# Installs the peers fnbench compares fn with, at the versions pinned in bench/peers/package-lock.json
# (CloudBase's functions framework, Google's functions framework; leanengine and express come from
# testdata/npm), then runs the peers group side by side with bare node:http and fn dev.
# Usage: bash bench/peers.sh            (FN_BENCH_SMOKE=1 for a short run)
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)
go run ./bench/fnbench -fn bin/fn -fixture testdata/npm/node_modules -peers bench/peers/node_modules -only peers "$@"
