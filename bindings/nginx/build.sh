#!/usr/bin/env bash
# Builds ngx_http_sessions_module.so for Debian's nginx: nginx-dev's source
# tree, configured with the flags Debian's nginx was built with (conf_flags:
# --with-compat, --with-threads, ...), so that `load_module` accepts it.
#
#   bindings/nginx/build.sh [LIBSESSIONS_BUILD_DIR] [OUT_DIR]
#
# LIBSESSIONS_BUILD_DIR (default build/release) is built first when it is
# the default; the module links its libsessions.so and records that
# directory as its run path. To link an installed libsessions instead, run
# with SESSIONS_LIB_DIR=/usr/local/lib SESSIONS_INCLUDE_DIR=/usr/local/include.
# The module lands in OUT_DIR (default: LIBSESSIONS_BUILD_DIR/nginx).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
libdir=$(realpath -m "${1:-$root/build/release}")
out=$(realpath -m "${2:-$libdir/nginx}")

"$root/scripts/deps.sh"
if [ $# -eq 0 ]; then
  cmake -S "$root" -B "$libdir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$libdir" -j"$(nproc)" --target sessions
fi
export SESSIONS_INCLUDE_DIR=${SESSIONS_INCLUDE_DIR:-$root/include}
export SESSIONS_LIB_DIR=${SESSIONS_LIB_DIR:-$libdir}
[ -e "$SESSIONS_LIB_DIR/libsessions.so" ] || { echo "no libsessions.so in $SESSIONS_LIB_DIR" >&2; exit 1; }

# A private copy of the source tree: configure writes into it. It is
# configured again only when the flags or the module's config change.
src=$out/nginx-src
source /usr/share/nginx/src/conf_flags  # NGX_CONF_FLAGS
stamp="${NGX_CONF_FLAGS[*]} $(sha256sum "$root/bindings/nginx/config" | cut -c1-16) $SESSIONS_LIB_DIR"
mkdir -p "$out"
if [ ! -f "$src/objs/Makefile" ] || [ "$(cat "$src/.sessions-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$src"
  cp -a /usr/share/nginx/src "$src"
  (cd "$src" && ./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$root/bindings/nginx" \
     --with-cc-opt="-O2 -g -fPIC -Wall -Wextra -Wno-unused-parameter -Werror" >"$out/configure.log" 2>&1) \
    || { tail -30 "$out/configure.log" >&2; exit 1; }
  echo "$stamp" >"$src/.sessions-stamp"
fi
make -C "$src" -f objs/Makefile -j"$(nproc)" -s modules >/dev/null
cp "$src/objs/ngx_http_sessions_module.so" "$out/"
echo "$out/ngx_http_sessions_module.so"
