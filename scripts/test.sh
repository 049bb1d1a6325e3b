#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
#   scripts/test.sh              build/ (RelWithDebInfo), every test
#   scripts/test.sh --sanitize   build-asan/ (ASan + UBSan), every test but
#                                the benchmarks, which it does not build
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/install-deps.sh"

dir=build
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  args=(-DCMAKE_BUILD_TYPE=Debug -DCAUDAL_SANITIZE=address,undefined -DCAUDAL_BUILD_BENCH=OFF)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

cmake -S . -B "$dir" "${args[@]}"
cmake --build "$dir" -j2
ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300
