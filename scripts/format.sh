#!/usr/bin/env bash
# Applies .clang-format to every C++ file git knows (make format). --check only lists the files it would change and
# fails if there are any. CLANG_FORMAT picks the binary (default: clang-format-19, Debian's clang-format-19).
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format-19}
command -v "$clang_format" >/dev/null || { echo "format.sh: $clang_format not found (apt-get install clang-format-19)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c' ':!:bench/compare/loadgen.c')
if [ "${1:-}" = --check ]; then
  status=0
  for f in "${files[@]}"; do
    if ! "$clang_format" --style=file "$f" | cmp -s "$f" -; then echo "$f"; status=1; fi
  done
  exit $status
fi
"$clang_format" --style=file -i "${files[@]}"
