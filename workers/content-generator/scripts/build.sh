#!/usr/bin/env bash
# build/index.js + the wasm, offline (kit_build in bitware-kit's scripts/kit.sh).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
kit_build
