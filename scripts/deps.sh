#!/usr/bin/env bash
# Installs the Debian packages libsessions needs to build, test and run its
# demo, but only those missing (so a second run is instant and offline).
set -euo pipefail

packages=(
  g++ cmake make pkg-config binutils     # toolchain; nm and objdump for the ABI check
  libssl-dev                             # AES-256-GCM, HKDF, HMAC, CSPRNG
  libmsgpack-dev                         # msgpack-c: the session record encoding
  nlohmann-json3-dev                     # JSON in and out of composite values
  catch2                                 # unit tests (Catch2 v2)
  libcpp-httplib-dev                     # the demo server
  python3                                # end-to-end tests
  python3-pytest python3-flask           # the Python binding's tests (Flask adapter)
  libhiredis-dev redis-server redis-tools  # redis: store, its tests, redis-benchmark
  libmemcached-dev memcached             # memcached: store and its tests
  libsqlite3-dev                         # sqlite: store
  libzstd-dev                            # compress=: zstd, faster than zlib on session records
  liblmdb-dev                            # examples/lmdb_store: a custom store on LMDB
  libpq-dev postgresql-15                # postgresql: store; a server the tests start (initdb)
  libmongoc-dev libbson-dev              # mongodb: store, and the wire-protocol test server
  nginx-core nginx-dev                   # the nginx module: Debian's nginx and its module source tree
  libpcre2-dev zlib1g-dev                # ... which nginx's configure checks for
  wrk                                    # bench/nginx.py
  clang libclang-rt-14-dev               # scripts/fuzz.sh: Debian's clang 14 and its sanitizer runtimes,
  libfuzzer-14-dev llvm-14               # libFuzzer, and llvm-symbolizer for readable stacks
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
