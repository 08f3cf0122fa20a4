#!/usr/bin/env bash
# Checks of the project's own shell scripts that need no running worker:
# files holding secrets are written readable by their owner only.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { if [ "$2" = "$3" ]; then echo "ok    $1"; pass=$((pass + 1)); else echo "FAIL  $1: got '$2', want '$3'"; fail=$((fail + 1)); fi; }

# A file that existed with a wider mode is narrowed, and the caller's umask is untouched.
touch "$tmp/secrets.env"; chmod 644 "$tmp/secrets.env"
before=$(umask)
printf 'SHARED_SECRET=x\n' | write_private "$tmp/secrets.env"
check "write_private leaves a secrets file 0600" "$(stat -c %a "$tmp/secrets.env")" 600
check "write_private keeps its content" "$(cat "$tmp/secrets.env")" "SHARED_SECRET=x"
check "write_private does not change the caller's umask" "$(umask)" "$before"

# Every script that writes a secrets file goes through write_private.
check "dev.sh writes its secrets file through write_private" "$(grep -c 'write_private "$env_file"' dev.sh)" 1
check "the KAM stand-in's vars go through write_private" "$(grep -c 'write_private dev/kam/.dev.vars' scripts/lib.sh)" 1
check "no script redirects a secret with a bare >" "$(grep -nE "SHARED_SECRET=.*> *\"?\\$" dev.sh scripts/*.sh | grep -vc write_private)" 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
