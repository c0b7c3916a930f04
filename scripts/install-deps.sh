#!/usr/bin/env bash
# Installs the Debian packages tulipa needs, and only those that are missing: when everything is installed it makes
# no network access and changes nothing (the Makefile runs it every time).
#   scripts/install-deps.sh run            what `make run` needs (scripts/deps/run.txt)
#   scripts/install-deps.sh run bench test what `make test` needs
# One package a line in scripts/deps/<set>.txt; '#' starts a comment.
# Needs root for apt-get; uses sudo when not root. TULIPA_NO_APT=1 installs nothing: it lists what is missing and
# goes on (for machines that are not Debian, or where you are not root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(run)

packages=()
for set in "${sets[@]}"; do
  list="$here/deps/$set.txt"
  [ -f "$list" ] || { echo "install-deps: no package set '$set' ($list)" >&2; exit 2; }
  while read -r pkg _; do
    [ -n "$pkg" ] && [ "${pkg:0:1}" != "#" ] && packages+=("$pkg")
  done < "$list"
done

missing=()
for pkg in "${packages[@]}"; do
  # dpkg -s also succeeds for a package removed but not purged; the status line tells installed apart.
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${TULIPA_NO_APT:-0}" = 1 ]; then
  echo "install-deps: TULIPA_NO_APT=1, not installing; missing Debian packages (or your system's equivalents): ${missing[*]}" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run this script as root (no sudo here), or set TULIPA_NO_APT=1" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
