#!/usr/bin/env bash
# The full test suite: installs what it needs, builds in release and under
# ASan+UBSan (warnings are errors in both), and runs every test in each:
# Catch2 (core, C ABI, C++ wrapper), end-to-end over HTTP, and the installed
# package (nm, plain C via pkg-config, find_package).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
run_suite() {  # name, cmake options...
  local dir=build/$1; shift
  echo "== $dir"
  cmake -S . -B "$dir" -DSESSIONS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

run_suite release -DCMAKE_BUILD_TYPE=Release
# The mongodb: store against a real MongoDB, when there is one (CI has none:
# its tests there run against tests/stores/mongo_wire_server).
if [ -n "${SESSIONS_TEST_MONGODB_URI:-}" ]; then
  echo "== mongodb: against $SESSIONS_TEST_MONGODB_URI"
  build/release/tests/store_tests "[real-mongodb]"
  build/release/tests/conformance_tests "[real-mongodb]"
fi
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSESSIONS_SANITIZE=ON -DSESSIONS_BUILD_BENCH=OFF

# The libFuzzer harnesses (tests/fuzz, docs/fuzzing.md): a clang build and 10 s of each.
scripts/fuzz.sh --seconds 10

# The benchmarks are not tests; this only checks that they still run.
build/release/bench/bench_cycle --quick >/dev/null
python3 bench/stores.py build/release --seconds 0.2 --trials 1 --threads 2 >/dev/null
/usr/bin/python3 bench/nginx.py build/release --seconds 1 --trials 1 --sessions 10 >/dev/null
echo "all suites passed"
