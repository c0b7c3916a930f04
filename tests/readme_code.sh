#!/usr/bin/env bash
# Keeps README's code true: the ```cpp block that follows the line "<!-- code: PATH -->" in README.md must be PATH's
# text without its leading comment (the lines starting with // before the first other line). PATH is compiled and
# run by the suite (examples/quickstart: the example_quickstart test).
#   readme_code.sh SOURCE_DIR
set -euo pipefail
cd "$1"
status=0
found=0
while read -r path; do
  found=1
  shown=$(awk -v marker="<!-- code: $path -->" '
    $0 == marker { armed = 1; next }
    armed && /^```cpp$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }' README.md)
  real=$(awk 'started || !/^\/\// { started = 1; print }' "$path")
  if [ "$shown" != "$real" ]; then
    echo "README.md's block for $path differs from the file (update README.md from $path):" >&2
    diff <(echo "$real") <(echo "$shown") >&2 || true
    status=1
  fi
done < <(sed -n 's/^<!-- code: \(.*\) -->$/\1/p' README.md)
[ $found = 1 ] || { echo "readme_code.sh: README.md marks no code block (<!-- code: PATH -->)" >&2; exit 1; }
exit $status
