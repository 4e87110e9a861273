#!/usr/bin/env bash
# Installs the build into a temporary prefix, then checks the package as a
# user meets it: only sess_* exported, the SONAME, the plain C test compiled
# with pkg-config, and a CMake project using find_package(sessions).
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
lib=$(find "$prefix" -name 'libsessions.so.*.*' -type f | head -1)
libdir=$(dirname "$lib")

exported=$(nm -D --defined-only "$lib" | awk '{print $3}')
others=$(grep -v '^sess_' <<<"$exported" || true)
if [ -n "$others" ]; then
  echo "libsessions exports symbols beyond sess_*:"; echo "$others"; exit 1
fi
echo "exports: $(wc -l <<<"$exported") symbols, all sess_*"
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "libsessions.so.0" ] || { echo "SONAME is '$soname'"; exit 1; }
echo "SONAME: $soname"
kit=$(find "$prefix" -name 'libsessions_conformance.so.*.*' -type f | head -1)
kit_exports=$(nm -D --defined-only "$kit" | awk '{print $3}')
if grep -qv '^sess_conformance_' <<<"$kit_exports"; then
  echo "libsessions_conformance exports symbols beyond sess_conformance_*:"
  grep -v '^sess_conformance_' <<<"$kit_exports"; exit 1
fi
[ -f "$prefix/include/sessions_conformance.h" ] || { echo "sessions_conformance.h not installed"; exit 1; }
echo "conformance kit: $(wc -l <<<"$kit_exports") symbol(s), all sess_conformance_*"

export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -pedantic "$source/tests/c/c_api_test.c" \
   $(pkg-config --cflags --libs sessions) -Wl,-rpath,"$libdir" -o "$work/c_api_test"
"$work/c_api_test"

cmake -S "$source/tests/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH=$libdir "$work/consumer/consumer"
