#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md): the cookie-store cycle next to the raw
# OpenSSL floor, the memory-store cycle at 1 and 2 threads, then the Redis
# and Memcached cycles at 1, 8 and 64 threads next to redis-benchmark and a
# raw libmemcached loop. Arguments go to bench/stores.py (--seconds, --trials,
# --threads); set SKIP_COOKIE=1 to run only the server-side stores. Last, the
# nginx module under wrk (bench/nginx.py); SKIP_NGINX=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh bench_cycle bench_stores sessions
[ "${SKIP_COOKIE:-0}" = 1 ] || build/release/bench/bench_cycle
echo
python3 bench/stores.py build/release "$@"
if [ "${SKIP_NGINX:-0}" != 1 ]; then
  echo
  bindings/nginx/build.sh build/release build/release/nginx >/dev/null
  /usr/bin/python3 bench/nginx.py build/release
fi
