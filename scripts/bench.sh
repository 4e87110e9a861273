#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md): the cookie-store cycle next to the raw
# OpenSSL floor, the memory-store cycle at 1 and 2 threads, then the Redis
# and Memcached cycles at 1, 8 and 64 threads next to redis-benchmark and a
# raw libmemcached loop. Arguments go to bench/stores.py (--seconds, --trials,
# --threads); set SKIP_COOKIE=1 to run only the server-side stores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh bench_cycle bench_stores
[ "${SKIP_COOKIE:-0}" = 1 ] || build/release/bench/bench_cycle
echo
exec python3 bench/stores.py build/release "$@"
