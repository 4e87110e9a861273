#!/usr/bin/env bash
# The full test suite: installs what it needs, builds in release and under
# ASan+UBSan (warnings are errors in both), and runs every test in each:
# Catch2 (core, C ABI, C++ wrapper), end-to-end over HTTP, and the installed
# package (nm, plain C via pkg-config, find_package); then the threaded tests
# under ThreadSanitizer.
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

# ThreadSanitizer: the core, the C ABI and the stores that need no second
# machine (memory:, cookie:, file:, sqlite:, redis: on a real redis-server, and
# redis+cluster: and redis+sentinel: on real clusters and sentinels):
# the unit and api tests, tests/threads (8 threads of request cycles, stores
# closed under load) and the file/sqlite/redis store tests. Any report fails
# its test (halt_on_error). No examples, hence no end-to-end, Python, nginx
# or package tests here: they run the demo server or load the library into
# an uninstrumented python3 or nginx.
echo "== build/tsan"
cmake -S . -B build/tsan -DSESSIONS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSESSIONS_TSAN=ON \
  -DSESSIONS_BUILD_BENCH=OFF -DSESSIONS_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/tsan -j"$jobs" --target unit_tests api_tests store_tests thread_tests
# TSan's runtime expects the kernel to place mappings where its fixed shadow
# layout has room; kernels that randomise mmap with more bits (vm.mmap_rnd_bits
# = 32, as on recent Ubuntu kernels) make it abort at start with "FATAL:
# ThreadSanitizer: unexpected memory mapping". Then the tests (and the
# servers they start) run with address randomisation off for this process
# tree only: setarch -R.
tsan_run=()
probe=$(build/tsan/tests/thread_tests --list-test-names-only 2>&1 || true)
if [[ $probe == *"unexpected memory mapping"* ]]; then
  echo "TSan cannot run with this kernel's ASLR: running the TSan suite under setarch -R"
  tsan_run=(setarch "$(uname -m)" -R)
fi
tsan_options="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/threads/tsan.supp"
(cd build/tsan && TSAN_OPTIONS=$tsan_options "${tsan_run[@]}" \
  ctest --output-on-failure -j"$jobs" -R '^(unit|api|threads):|^store: ?(file|sqlite|redis|redis\+cluster|redis\+sentinel):')

# The libFuzzer harnesses (tests/fuzz, docs/fuzzing.md): a clang build and 10 s of each.
scripts/fuzz.sh --seconds 10

# The benchmarks are not tests; this only checks that they still run.
build/release/bench/bench_cycle --quick >/dev/null
python3 bench/stores.py build/release --seconds 0.2 --trials 1 --threads 2 >/dev/null
/usr/bin/python3 bench/nginx.py build/release --seconds 1 --trials 1 --sessions 10 >/dev/null
echo "all suites passed"
