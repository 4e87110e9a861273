#!/usr/bin/env bash
# Installs what is missing, then builds the given targets in build/release.
# Used by demo.sh and bench.sh: scripts/build.sh demo_server
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target "$@"
