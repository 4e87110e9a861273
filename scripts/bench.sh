#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md): the cookie-store cycle next to the raw
# OpenSSL floor, and the memory-store cycle at 1 and 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh bench_cycle
exec build/release/bench/bench_cycle "$@"
