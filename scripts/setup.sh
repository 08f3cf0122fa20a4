#!/usr/bin/env bash
# Installs what building and running the granulator needs, skipping what is
# already there: the wasm32 target, the pinned wasm-bindgen CLI and
# worker-build, the npm packages pinned in package-lock.json, and the Python
# test tools pinned in scripts/requirements-test.txt (into .venv/).
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen pin in Cargo.toml
WORKER_BUILD_VERSION=0.8.7     # must equal the worker pin in Cargo.toml
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
step() { printf '\n== setup: %s\n' "$*"; }

for tool in cargo rustup node npm curl jq python3; do
  command -v "$tool" >/dev/null || { echo "setup: '$tool' is required and missing" >&2; exit 1; }
done

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

installed() { cargo install --list 2>/dev/null | grep -qx "$1 v$2:" && [ -x "$CARGO_BIN/$3" ]; }

if ! installed wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
  # Not --locked: its lock file names a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if ! installed worker-build "$WORKER_BUILD_VERSION" worker-build; then
  step "installing worker-build $WORKER_BUILD_VERSION (about 3 minutes)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --force
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.granulator-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/wrangler ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "npm ci (wrangler, workerd, esbuild, binaryen)"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# The openapi layer's Python tools (Schemathesis, openapi-spec-validator) in a
# project virtualenv, reinstalled only when the pinned requirements change.
venv=.venv
stamp=$venv/.granulator-requirements.sha256
want=$(sha256sum scripts/requirements-test.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/schemathesis" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "Python test tools into $venv (Schemathesis, openapi-spec-validator; about a minute)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  echo "$want" > "$stamp"
fi

for bin in "$CARGO_BIN/wasm-bindgen" "$CARGO_BIN/worker-build" node_modules/.bin/wrangler node_modules/.bin/esbuild node_modules/.bin/wasm-opt \
  "$venv/bin/schemathesis" "$venv/bin/openapi-spec-validator"; do
  [ -x "$bin" ] || { echo "setup: $bin is still missing" >&2; exit 1; }
done
