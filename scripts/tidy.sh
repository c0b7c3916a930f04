#!/usr/bin/env bash
# Runs clang-tidy (the checks of .clang-tidy) over the library, tests, benchmarks and examples, with the compile
# commands of build/ (make build first). Extra arguments go to run-clang-tidy (e.g. a file regex: scripts/tidy.sh src/tls).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/compile_commands.json ] || { echo "tidy.sh: no build/compile_commands.json: run make build first" >&2; exit 2; }
run-clang-tidy-19 -quiet -p build "$@"
