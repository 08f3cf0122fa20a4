#!/bin/sh
# Builds build/index.js + the wasm with worker-build, offline: every helper
# worker-build would download is pointed at what scripts/setup.sh installed.
# `sh scripts/build.sh --floor` builds bench/floor (./bench.sh's floor) instead.
set -eu
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
for bin in "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
  [ -x "$bin" ] || { echo "build: $bin is missing; run scripts/setup.sh" >&2; exit 1; }
done
if [ "${1:-}" = "--floor" ]; then
  cd bench/floor && exec "$HOME/.cargo/bin/worker-build" --release
fi
if [ "${GRANULATOR_SKIP_BUILD:-}" = "1" ]; then exit 0; fi
"$HOME/.cargo/bin/worker-build" --release
# Shrink the module Cloudflare loads on every cold start (see Cargo.toml). Only the
# features the module already uses: --all-features emits encodings workerd rejects.
# -Oz takes ~30 s, so its output is reused while wasm-bindgen's output is unchanged.
cache=target/wasm-opt-cache
mkdir -p "$cache"
input=$(sha256sum build/index_bg.wasm | cut -d' ' -f1)
if [ -f "$cache/$input.wasm" ]; then
  cp "$cache/$input.wasm" build/index_bg.wasm
else
  "$WASM_OPT_BIN" -Oz --enable-exception-handling --enable-reference-types --enable-bulk-memory \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-multivalue \
    build/index_bg.wasm -o "$cache/$input.tmp"
  rm -f "$cache"/*.wasm
  mv "$cache/$input.tmp" "$cache/$input.wasm"
  cp "$cache/$input.wasm" build/index_bg.wasm
fi
