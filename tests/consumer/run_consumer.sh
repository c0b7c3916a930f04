#!/usr/bin/env bash
# The install test: installs the build tree into a fresh prefix, then builds and runs the programs of
# tests/consumer/ against that prefix, as users would, with -Wall -Wextra -Wpedantic -Werror:
#   - the CMake package, as a C++23 project: find_package(tulipa COMPONENTS tls), tulipa::tulipa and tulipa::tls;
#   - pkg-config, as C++20: `tulipa` for main.cpp and `tulipa-tls` for tls_main.cpp.
# It also checks that tulipa/tulipa.hpp names every public header of the core and that tulipa.pc imposes no
# language standard. Nothing outside WORK_DIR is touched.
#   run_consumer.sh BUILD_DIR WORK_DIR CXX_COMPILER CMAKE_GENERATOR
set -euo pipefail
build_dir=$1 work=$2 cxx=$3 generator=$4
here=$(cd "$(dirname "$0")" && pwd)

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"
launcher=()
command -v ccache >/dev/null && launcher=(ccache)

echo "== the umbrella header names every public header of the core"
missing=0
for header in "$prefix"/include/tulipa/*.hpp; do
  name=$(basename "$header")
  case $name in tulipa.hpp | tls*.hpp) continue ;; esac  # TLS is the tls component's, included on its own
  if ! grep -q "^#include \"tulipa/$name\"" "$prefix/include/tulipa/tulipa.hpp"; then
    echo "tulipa/tulipa.hpp does not include tulipa/$name" >&2
    missing=1
  fi
done
[ $missing = 0 ]

echo "== a certificate for the TLS consumer"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 2 2>"$work/openssl.log"

echo "== find_package(tulipa COMPONENTS tls), C++23"
cmake -S "$here" -B "$work/cmake-build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_STANDARD=23 \
  -DCMAKE_CXX_COMPILER_LAUNCHER="${launcher[*]}" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/configure.log"
cmake --build "$work/cmake-build"
"$work/cmake-build/tulipa_consumer"
"$work/cmake-build/tulipa_tls_consumer" "$work/cert.pem" "$work/key.pem"
"$work/cmake-build/tulipa_http_consumer"

pc_dir=$(dirname "$(find "$prefix" -name tulipa.pc -print -quit)")
if PKG_CONFIG_PATH=$pc_dir pkg-config --cflags tulipa tulipa-tls | grep -q -- "-std="; then
  echo "tulipa.pc or tulipa-tls.pc sets the language standard: that is the consumer's choice" >&2
  exit 1
fi
# $flags is word-split on purpose: it is a list of compiler arguments.
for pc in tulipa tulipa-tls tulipa-http; do
  echo "== pkg-config $pc, C++20"
  flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs $pc)
  echo "pkg-config --cflags --libs $pc: $flags"
  source=main.cpp args=()
  [ $pc = tulipa-tls ] && source=tls_main.cpp args=("$work/cert.pem" "$work/key.pem")
  [ $pc = tulipa-http ] && source=http_main.cpp
  # shellcheck disable=SC2086
  "${launcher[@]}" "$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror "$here/$source" $flags -o "$work/$pc-consumer"
  "$work/$pc-consumer" "${args[@]}"
done
