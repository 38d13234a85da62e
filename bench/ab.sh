#!/usr/bin/env bash
# Compares two fn binaries side by side: fn build (cold, after an edit), then each serves the same
# trivial function as fn serve (lean cloud code, deployed) and as fn dev (lean
# cloud code, a wx function with one call per instance, one with concurrency: 32), driven in
# interleaved rounds with bare node:http by the same Go load generator (fnbench -only ab).
# Usage: bash bench/ab.sh OLD_FN NEW_FN   (e.g. git worktree of the old commit, make build in both)
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/fnbench -fixture testdata/npm/node_modules -only ab -fn "$2" -fn-before "$1" "${@:3}"
