#!/usr/bin/env bash
# The demo: installs what it needs, builds, and runs the demo server on the
# embedded default store (cookie:) at http://127.0.0.1:8080.
# Arguments go to the server: scripts/demo.sh --store memory: --port 9000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh demo_server
exec build/release/examples/demo_server "$@"
