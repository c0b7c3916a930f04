#!/usr/bin/env bash
# Installs the Debian packages tulipa needs to build, test, run and benchmark, and only those that are missing:
# when everything is installed it makes no network access and changes nothing (the Makefile runs it every time).
# Needs root for apt-get; uses sudo when not root. Add a package by adding its name to PACKAGES below.
set -euo pipefail

PACKAGES=(
  # toolchain and build
  build-essential cmake ninja-build ccache pkg-config
  # tests and micro-benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev strace
  # TLS and the io_uring backend
  libssl-dev openssl liburing-dev
  # the libraries the benchmarks compare against
  libuv1-dev libasio-dev
  # nc, which the README uses to talk to the chat of `make run`
  netcat-openbsd
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  # dpkg -s also succeeds for a package removed but not purged; the status line tells installed apart.
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run this script as root (no sudo here)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
