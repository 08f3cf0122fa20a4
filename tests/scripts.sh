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
check "the KAM stand-in's vars go through write_private" "$(grep -c 'write_private "$KIT_DIR/dev/kam/.dev.vars"' crates/bitware-kit/scripts/kit.sh)" 1
check "no script redirects a secret with a bare >" "$(grep -nE "SHARED_SECRET=.*> *\"?\\$" dev.sh scripts/*.sh crates/bitware-kit/scripts/*.sh | grep -vc write_private)" 0

# dev.sh's configuration: .dev.vars (dotenv) overlaid by the environment.
cat > "$tmp/dev.vars" <<'VARS'
# a comment
OPENAI_MODEL=from-file
export PRICING='{"models":{"m":{"input":0,"output":0}}}'
AI_MAX_ATTEMPTS="2" # trailing comment
CUSTOM_NAME=kept
VARS
env -i PATH="$PATH" OPENAI_MODEL=from-env HOME_SHELL_VAR=x python3 scripts/dev_vars.py write "$tmp/dev.vars" > "$tmp/merged.env"
get() { python3 scripts/dev_vars.py get "$1" "$tmp/merged.env"; }
check "dev_vars: the environment wins over .dev.vars" "$(get OPENAI_MODEL)" from-env
check "dev_vars: quoted JSON survives" "$(get PRICING)" '{"models":{"m":{"input":0,"output":0}}}'
check "dev_vars: comments are dropped" "$(get AI_MAX_ATTEMPTS)" 2
check "dev_vars: other .dev.vars names pass through" "$(get CUSTOM_NAME)" kept
check "dev_vars: SHARED_SECRET has the dev default" "$(get SHARED_SECRET)" dev-shared-secret
check "dev_vars: the shell's other variables stay out" "$(grep -c HOME_SHELL_VAR "$tmp/merged.env")" 0
env -i PATH="$PATH" python3 scripts/dev_vars.py write /nonexistent > "$tmp/none.env"
check "dev_vars: no .dev.vars is fine" "$(python3 scripts/dev_vars.py get SHARED_SECRET "$tmp/none.env")" dev-shared-secret
# Every name of the Configuration table (docs/operations.md) is one dev.sh passes on.
config_names=$(sed -n '/^## Configuration/,/^Bindings:/{/^Bindings:/!p}' docs/operations.md | grep -oE '`[A-Z][A-Z0-9_]+`' | tr -d '`' | sort -u)
check "dev_vars: the Configuration table lists variables" "$([ "$(echo "$config_names" | wc -w)" -ge 20 ] && echo yes)" yes
missing=$(for n in $config_names; do grep -q "\"$n\"" scripts/dev_vars.py || echo "$n"; done | tr '\n' ' ')
check "dev_vars: every configuration variable of docs/operations.md is passed on" "$missing" ""

# The fan-out benchmark's overlap measures (issue 24 item 6) on a known outline.
check "bench_overlap: its self-test passes" "$(python3 scripts/bench_overlap.py --self-test 2>&1)" "bench_overlap: self-test passed"
# The chain benchmark's critical path (the calls a generation waited on) on a known timeline.
check "bench_chain: its self-test passes" "$(python3 scripts/bench_chain.py --self-test 2>&1)" "bench_chain: self-test passed"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
