#!/usr/bin/env bash
# The install test: installs the build tree into a fresh prefix, then builds and runs tests/consumer/main.cpp
# against that prefix twice, through the CMake package and through pkg-config. Nothing outside WORK_DIR is touched.
#   run_consumer.sh BUILD_DIR WORK_DIR CXX_COMPILER CMAKE_GENERATOR
set -euo pipefail
build_dir=$1 work=$2 cxx=$3 generator=$4
here=$(cd "$(dirname "$0")" && pwd)

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"

echo "== find_package(tulipa)"
cmake -S "$here" -B "$work/cmake-build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/configure.log"
cmake --build "$work/cmake-build"
"$work/cmake-build/tulipa_consumer"

echo "== pkg-config tulipa"
pc_dir=$(dirname "$(find "$prefix" -name tulipa.pc -print -quit)")
flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs tulipa)
echo "pkg-config --cflags --libs tulipa: $flags"
# $flags is word-split on purpose: it is a list of compiler arguments.
# shellcheck disable=SC2086
"$cxx" "$here/main.cpp" $flags -o "$work/pkgconfig-consumer"
"$work/pkgconfig-consumer"
