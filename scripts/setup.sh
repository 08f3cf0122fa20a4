#!/usr/bin/env bash
# Installs what building and running the granulator needs, skipping what is
# already there: the wasm32 target, the pinned wasm-bindgen CLI and
# worker-build, the npm packages pinned in package-lock.json, Debian's
# chromium (the browser layer), and the Python
# test tools pinned in scripts/requirements-test.txt (into .venv/).
set -euo pipefail
cd "$(dirname "$0")/.."

source crates/bitware-kit/scripts/kit.sh
step() { printf '\n== setup: %s\n' "$*"; }

# The wasm32 target, wasm-bindgen CLI, worker-build and npm packages (the kit's).
kit_setup

# The browser layer's Chromium: Debian's package, driven by playwright-core
# from node_modules (nothing downloads a browser).
if [ ! -x /usr/bin/chromium ]; then
  step "Chromium for the browser layer (apt-get install chromium; about a minute)"
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium
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

for bin in "$venv/bin/schemathesis" "$venv/bin/openapi-spec-validator" /usr/bin/chromium; do
  [ -x "$bin" ] || { echo "setup: $bin is still missing" >&2; exit 1; }
done
