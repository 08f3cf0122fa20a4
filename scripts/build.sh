#!/usr/bin/env bash
# Builds build/index.js + the wasm with worker-build, offline, then wasm-opt -Oz
# (kit_build in crates/bitware-kit/scripts/kit.sh; see Cargo.toml for why
# wasm-opt runs here: measured 1.20 MB against 1.38 MB from worker-build's step),
# then the console's static assets with esbuild (console/build.mjs → console/dist).
# `sh scripts/build.sh --floor` builds bench/floor (./bench.sh's floor) instead;
# `--contract` the kit's contract worker (crates/bitware-kit/dev/contract).
# Run as `sh scripts/build.sh` (wrangler.toml [build]): the kit's library is bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
source crates/bitware-kit/scripts/kit.sh
if [ "${1:-}" = "--floor" ]; then
  kit_build_tools
  cd bench/floor && exec "$HOME/.cargo/bin/worker-build" --release
fi
if [ "${1:-}" = "--contract" ]; then
  kit_build_tools
  cd crates/bitware-kit/dev/contract && exec "$HOME/.cargo/bin/worker-build" --release
fi
kit_build
# The console's static assets (console/dist, wrangler.toml [assets]).
node console/build.mjs
