#!/usr/bin/env bash
# Applies .clang-format to every C++ file of the project (make format). --check changes nothing: it lists the files
# that are not formatted and fails if there are any (the CTest test `format` runs it). CLANG_FORMAT picks the binary
# (default: clang-format-19, Debian's clang-format-19; other versions wrap and order differently).
# The files are the ones git knows; outside a git checkout (a release tarball), every C++ file under the project's
# source folders.
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format-19}
command -v "$clang_format" >/dev/null || { echo "format.sh: $clang_format not found (apt-get install clang-format-19)" >&2; exit 2; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp' '*.h' '*.c' ':!:bench/compare/loadgen.c')
else
  mapfile -t files < <(find apps bench examples fuzz include src tests -type f \
    \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' \) ! -path bench/compare/loadgen.c | sort)
fi
if [ "${1:-}" = --check ]; then
  # One clang-format process for the whole tree: --dry-run -Werror reports each place that would change.
  if ! report=$("$clang_format" --style=file --dry-run -Werror "${files[@]}" 2>&1); then
    echo "format.sh: not formatted with $clang_format (run make format):" >&2
    grep -o '^[^:]*:[0-9]*:[0-9]*: error' <<<"$report" | cut -d: -f1 | sort -u >&2
    exit 1
  fi
  exit 0
fi
"$clang_format" --style=file -i "${files[@]}"
