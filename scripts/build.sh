#!/bin/sh
# Builds build/index.js + the wasm with worker-build, offline: every helper
# worker-build would download is pointed at what scripts/setup.sh installed.
set -eu
cd "$(dirname "$0")/.."
if [ "${GRANULATOR_SKIP_BUILD:-}" = "1" ]; then exit 0; fi
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
for bin in "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
  [ -x "$bin" ] || { echo "build: $bin is missing; run scripts/setup.sh" >&2; exit 1; }
done
exec "$HOME/.cargo/bin/worker-build" --release
