#!/usr/bin/env bash
# Runs clang-tidy (the checks of .clang-tidy).
#   scripts/tidy.sh                   the library, tests, benchmarks and examples, with the compile commands of build/
#                                     (make build first); extra arguments go to run-clang-tidy (e.g. a file regex:
#                                     scripts/tidy.sh src/tls)
#   scripts/tidy.sh --public-headers  every public header under include/tulipa/, through one file that includes
#                                     them all (no build needed): the contract users read stays free of implicit
#                                     constructors and uses after move that are not marked NOLINT(check) with a reason
# CLANG_TIDY picks the binary (default: clang-tidy-19).
set -euo pipefail
cd "$(dirname "$0")/.."
clang_tidy=${CLANG_TIDY:-clang-tidy-19}
command -v "$clang_tidy" >/dev/null || { echo "tidy.sh: $clang_tidy not found (apt-get install clang-tidy-19)" >&2; exit 2; }
if [ "${1:-}" = --public-headers ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  all=$work/all_public_headers.cpp
  (cd include && find tulipa -name '*.hpp' | sort | sed 's/.*/#include "&"/') >"$all"
  # The components' headers include their dependencies' (libpq's for postgres).
  deps=$(pkg-config --cflags-only-I libpq 2>/dev/null || echo -I/usr/include/postgresql)
  # shellcheck disable=SC2086
  if ! out=$("$clang_tidy" --quiet --config-file=.clang-tidy --header-filter="$PWD/include/tulipa/.*" \
    --warnings-as-errors='*' "$all" -- -std=c++20 -I"$PWD/include" $deps 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  echo "tidy.sh: $(grep -c '^#include' "$all") public headers clean"
  exit 0
fi
[ -f build/compile_commands.json ] || { echo "tidy.sh: no build/compile_commands.json: run make build first" >&2; exit 2; }
run-clang-tidy-19 -quiet -p build "$@"
