#!/usr/bin/env bash
# Installs what building and running this worker needs, skipping what is there
# (kit_setup in bitware-kit's scripts/kit.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
kit_setup
