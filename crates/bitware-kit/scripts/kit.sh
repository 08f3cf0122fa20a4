# bitware-kit's shell library, sourced by every AI Factory worker's dev.sh,
# test.sh and scripts: free ports, starting and stopping the processes a
# script owns (always by PID / process group, never by name), wrangler dev
# with the kit's KAM stand-in (dev/kam), local D1 migrations.
# shellcheck shell=bash

KIT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_SEND_METRICS=false WRANGLER_LOG=warn
# The worker's own wrangler dev logs at `log`: its per-request JSON lines
# (console.log) are hidden at `warn`, and they belong in the log file.
WORKER_LOG_LEVEL=${WORKER_LOG_LEVEL:-log}
STARTED_PGIDS=()

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_bg VAR LOGFILE CMD...: run CMD in its own process group and store its
# PID in VAR. Never call it inside $(...): the PGID must be recorded in this
# shell, or stop_started cannot stop what was started.
start_bg() {
  local var=$1 log=$2; shift 2
  setsid "$@" >"$log" 2>&1 < /dev/null &
  STARTED_PGIDS+=("$!")
  printf -v "$var" '%s' "$!"
}

stop_started() {
  local pgid
  for pgid in "${STARTED_PGIDS[@]:-}"; do
    [ -n "$pgid" ] || continue
    kill -TERM -- "-$pgid" 2>/dev/null || true
  done
  sleep 0.5
  for pgid in "${STARTED_PGIDS[@]:-}"; do
    [ -n "$pgid" ] || continue
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  STARTED_PGIDS=()
}

# wait_http URL SECONDS PID: until URL answers 200, the process dies, or time runs out.
wait_http() {
  local url=$1 seconds=$2 pid=$3 i
  for ((i = 0; i < seconds * 4; i++)); do
    curl -sf -o /dev/null "$url" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}

# write_private FILE: stdin to FILE, readable by its owner only (0600), even
# when FILE existed before with a wider mode.
write_private() {
  (umask 077; rm -f "$1"; cat > "$1") && chmod 600 "$1"
}

# write_kam_vars SECRET: the KAM stand-in's own dev vars file (gitignored).
write_kam_vars() {
  printf 'SHARED_SECRET=%s\n' "$1" | write_private "$KIT_DIR/dev/kam/.dev.vars"
}

# kit_run_config CONFIG: CONFIG without its `[build]` table, written beside
# it as .wrangler.run.toml (so `main`, `[assets]` and `migrations_dir` resolve
# as in CONFIG); prints its path. Without a custom build wrangler dev runs the
# bundle as it is: no build at start, and no rebuild when its file watcher
# becomes ready ("The file src changed, restarting build..."), which
# restarted workerd under running tests (and sometimes failed them with
# `Address already in use`). Written to a temporary file, then renamed, so
# stacks started at the same moment never read half a file.
kit_run_config() {
  local config=$1 dir tmp
  dir=$(dirname "$config")
  tmp=$(mktemp "$dir/.wrangler.run.XXXXXX") || return 1
  # Drop `[build]` (and `[env.X.build]`) up to the next table header.
  awk '/^[[:space:]]*\[/ { skip = ($0 ~ /^[[:space:]]*\[(env\.[^]]+\.)?build\][[:space:]]*(#.*)?$/) } !skip' \
    "$config" >"$tmp" && mv "$tmp" "$dir/.wrangler.run.toml" || { rm -f "$tmp"; return 1; }
  printf '%s\n' "$dir/.wrangler.run.toml"
}

# start_worker VAR PORT STATE_DIR ENV_FILE LOG [--var K:V ...]: wrangler dev of
# the worker in the current directory with the kit's KAM stand-in bound as
# KEY_ACCOUNT_MANAGER; its process group id goes to VAR. The bundle is built
# beforehand. By default it runs as built (kit_run_config: what tests and
# benchmarks want: a worker that never restarts under them). KIT_WATCH=1 (a
# person's ./dev.sh) keeps wrangler.toml's `[build]`: wrangler rebuilds when
# src/ changes, and BITWARE_SKIP_BUILD=unchanged makes that build (and the
# one at start) a no-op while the bundle is newer than the sources.
# KIT_INSPECTOR_PORT: the DevTools inspector's port (default: a free one).
start_worker() {
  local var=$1 port=$2 state=$3 env_file=$4 log=$5 config skip=1; shift 5
  if [ "${KIT_WATCH:-}" = "1" ]; then
    config=wrangler.toml skip=unchanged
  else
    config=$(kit_run_config wrangler.toml) || return 1
  fi
  BITWARE_SKIP_BUILD=$skip WRANGLER_LOG=$WORKER_LOG_LEVEL start_bg "$var" "$log" node_modules/.bin/wrangler dev \
    -c "$config" -c "$KIT_DIR/dev/kam/wrangler.toml" \
    --ip 127.0.0.1 --port "$port" --inspector-port "${KIT_INSPECTOR_PORT:-$(free_port)}" \
    --persist-to "$state" --env-file "$env_file" \
    --show-interactive-dev-session=false --test-scheduled "$@"
}

apply_migrations() {
  node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$1" >/dev/null
}

# kit_start_contract WORKDIR: the kit's contract worker (dev/contract, its
# bundle built beforehand) on a fresh local D1 made from the kit's own
# migrations, from the workspace root (node_modules/.bin/wrangler). Exports
# KIT_CONTRACT_URL; stop_started stops it.
kit_start_contract() {
  local work=$1 port pgid cfg="$KIT_DIR/dev/contract/wrangler.toml"
  port=$(free_port)
  mkdir -p "$work/state"
  node_modules/.bin/wrangler d1 migrations apply DB --local -c "$cfg" --persist-to "$work/state" >/dev/null || return 1
  start_bg pgid "$work/wrangler.log" node_modules/.bin/wrangler dev -c "$cfg" \
    --ip 127.0.0.1 --port "$port" --inspector-port "$(free_port)" --persist-to "$work/state" \
    --show-interactive-dev-session=false
  if ! wait_http "http://127.0.0.1:$port/" 120 "$pgid"; then
    echo "the kit's contract worker did not start:"; tail -n 40 "$work/wrangler.log"; return 1
  fi
  export KIT_CONTRACT_URL="http://127.0.0.1:$port"
}

# The local D1 database file of a state directory (read with sqlite3).
d1_file() {
  find "$1/v3/d1" -name '*.sqlite' ! -name 'metadata.sqlite' | head -n 1
}

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() {
  python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

# kit_build_tools: point worker-build at the helpers kit_setup installed
# (WASM_BINDGEN_BIN, ESBUILD_BIN, WASM_OPT_BIN), so it downloads nothing.
kit_build_tools() {
  export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
  export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
  export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
  local bin
  for bin in "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
    [ -x "$bin" ] || { echo "build: $bin is missing; run scripts/setup.sh" >&2; return 1; }
  done
}

# kit_build: build/index.js + the wasm of the worker in the current directory
# with worker-build, offline: every helper worker-build would download is
# pointed at what kit_setup installed. Then binaryen's wasm-opt -Oz (pinned in
# package.json) shrinks the module Cloudflare loads on every cold start; only
# the features the module already uses (--all-features emits encodings workerd
# rejects). --low-memory-unused: Rust's wasm32 layout keeps the stack (growing
# down from 1 MB) and the data above the first KB, so constant offsets fold
# into loads and stores (1 226 936 -> 1 219 124 bytes, -3.3 KB gzip; issue 11).
# -Oz takes ~30 s, so its output is reused while wasm-bindgen's is
# unchanged. BITWARE_SKIP_BUILD=1: nothing to do (the bundle is built);
# BITWARE_SKIP_BUILD=unchanged: nothing to do unless a source (src/, the
# manifests, build.rs, the kit's src/) is newer than the bundle (./dev.sh's
# rebuild on change, start_worker).
kit_build() {
  case "${BITWARE_SKIP_BUILD:-}" in
    1) return 0 ;;
    unchanged)
      if [ -f build/index_bg.wasm ] && [ -z "$(find src Cargo.toml Cargo.lock build.rs "$KIT_DIR/src" \
        -newer build/index_bg.wasm -print -quit 2>/dev/null)" ]; then
        return 0
      fi
      ;;
  esac
  kit_build_tools || return 1
  local cache input
  local flags=(-Oz --low-memory-unused --enable-exception-handling --enable-reference-types --enable-bulk-memory
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-multivalue)
  # KIT_PROFILE=1: keep the function names (a names section) for profilers.
  [ "${KIT_PROFILE:-}" = "1" ] && flags+=(-g)
  "$HOME/.cargo/bin/worker-build" --release || return 1
  # One cached module per worker directory (workers may share a target dir),
  # keyed by wasm-bindgen's output and the flags.
  cache=${CARGO_TARGET_DIR:-target}/wasm-opt-cache/$(basename "$PWD")
  mkdir -p "$cache"
  input=$({ cat build/index_bg.wasm; printf '%s\n' "${flags[@]}"; } | sha256sum | cut -d' ' -f1)
  if [ ! -f "$cache/$input.wasm" ]; then
    "$WASM_OPT_BIN" "${flags[@]}" build/index_bg.wasm -o "$cache/$input.tmp" || return 1
    rm -f "$cache"/*.wasm
    mv "$cache/$input.tmp" "$cache/$input.wasm"
  fi
  cp "$cache/$input.wasm" build/index_bg.wasm
}

# kit_setup: what building and running a worker needs, skipping what is
# already there: the wasm32 target, the wasm-bindgen CLI and worker-build at
# the kit's pins, and the npm packages of the worker's package-lock.json
# (npm ci only when the lock file changed since the last install).
KIT_WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen pin in the workers' Cargo.toml
KIT_WORKER_BUILD_VERSION=0.8.7     # must equal the worker pin
kit_setup() {
  local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin" tool stamp want bin
  step() { printf '\n== setup: %s\n' "$*"; }
  for tool in cargo rustup node npm curl jq python3; do
    command -v "$tool" >/dev/null || { echo "setup: '$tool' is required and missing" >&2; return 1; }
  done
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown || return 1
  fi
  installed() { cargo install --list 2>/dev/null | grep -qx "$1 v$2:" && [ -x "$cargo_bin/$3" ]; }
  if ! installed wasm-bindgen-cli "$KIT_WASM_BINDGEN_VERSION" wasm-bindgen; then
    step "installing wasm-bindgen-cli $KIT_WASM_BINDGEN_VERSION (about 2 minutes)"
    # Not --locked: its lock file names a webpki-roots release the registry no longer serves.
    cargo install wasm-bindgen-cli --version "$KIT_WASM_BINDGEN_VERSION" --force || return 1
  fi
  if ! installed worker-build "$KIT_WORKER_BUILD_VERSION" worker-build; then
    step "installing worker-build $KIT_WORKER_BUILD_VERSION (about 3 minutes)"
    cargo install worker-build --version "$KIT_WORKER_BUILD_VERSION" --locked --force || return 1
  fi
  stamp=node_modules/.bitware-lock.sha256
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -x node_modules/.bin/wrangler ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # A linked node_modules is another worker's install: npm ci would empty it.
    if [ -L node_modules ]; then
      echo "setup: node_modules links to $(readlink node_modules), which does not match package-lock.json; run setup there or remove the link" >&2
      return 1
    fi
    step "npm ci (wrangler, workerd, esbuild, binaryen)"
    npm ci --no-audit --no-fund || return 1
    echo "$want" > "$stamp"
  fi
  for bin in "$cargo_bin/wasm-bindgen" "$cargo_bin/worker-build" node_modules/.bin/wrangler node_modules/.bin/esbuild node_modules/.bin/wasm-opt; do
    [ -x "$bin" ] || { echo "setup: $bin is still missing" >&2; return 1; }
  done
}

# kit_check_schema "SCHEMA FILES" [QUERY]: schema/*.sql and migrations/ build
# the same database (sqlite_schema, plus what QUERY selects, e.g. seed rows),
# then wrangler applies the migrations to a fresh local D1 and a second apply
# finds nothing to do.
kit_check_schema() {
  local files=$1 query=${2:-} tmp first second rc=0
  tmp=$(mktemp -d)
  # shellcheck disable=SC2086
  cat $files | sqlite3 "$tmp/from-schema.db" && cat migrations/*.sql | sqlite3 "$tmp/from-migrations.db" || rc=1
  dump() {
    sqlite3 "$1" "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name;" ${query:+"$query"}
  }
  if [ $rc -eq 0 ] && ! diff <(dump "$tmp/from-schema.db") <(dump "$tmp/from-migrations.db"); then
    echo "schema: $files and migrations/ have drifted apart (diff above)"; rc=1
  fi
  [ $rc -eq 0 ] && echo "schema: $files and migrations/ build identical databases ($(dump "$tmp/from-schema.db" | wc -l) lines compared)"
  if [ $rc -eq 0 ]; then
    first=$(WRANGLER_LOG=log node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$tmp/d1" 2>&1)
    second=$(WRANGLER_LOG=log node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$tmp/d1" 2>&1)
    if ! grep -q "$(basename "$(ls migrations/*.sql | tail -n 1)")" <<<"$first"; then
      echo "$first"; echo "schema: migrations did not apply"; rc=1
    elif ! grep -qi "no migrations to apply" <<<"$second"; then
      echo "$second"; echo "schema: re-applying migrations was not a no-op"; rc=1
    else
      echo "schema: migrations apply to an empty local D1 and re-apply as a no-op"
    fi
  fi
  rm -rf "$tmp"
  return $rc
}

# kit_check_migrations [DIR]: the kit's migrations are in DIR (default
# migrations/) as byte-identical copies under their own names, before the
# worker's own (scripts/new-worker.sh copies them; a worker never edits them).
kit_check_migrations() {
  local dir=${1:-migrations} f name rc=0 first
  first=$(ls "$dir"/*.sql | head -n 1)
  for f in "$KIT_DIR"/migrations/*.sql; do
    name=$(basename "$f")
    if ! cmp -s "$f" "$dir/$name"; then
      echo "migrations: $dir/$name is not a byte-identical copy of the kit's $f"; rc=1
    fi
  done
  [ "$(basename "$first")" = "$(basename "$(ls "$KIT_DIR"/migrations/*.sql | head -n 1)")" ] ||
    { echo "migrations: the kit's migrations must come first in $dir"; rc=1; }
  [ $rc -eq 0 ] && echo "migrations: the kit's $(ls "$KIT_DIR"/migrations/*.sql | wc -l) migration(s) are byte-identical copies, first"
  return $rc
}

# kit_check_deploy OUTDIR BINDING...: `wrangler deploy --dry-run` of staging and
# production, offline, with the bundle already built: each succeeds, writes
# the bundle, binds every BINDING and sets ENVIRONMENT to its own name. Counts
# into KIT_PASS / KIT_FAIL (the caller may add checks of its own).
KIT_PASS=0; KIT_FAIL=0
kit_check() {
  if [ "$2" = "$3" ]; then echo "ok    $1"; KIT_PASS=$((KIT_PASS + 1)); else echo "FAIL  $1: got '$2', want '$3'"; KIT_FAIL=$((KIT_FAIL + 1)); fi
}
kit_check_deploy() {
  local tmp=$1 env out rc binding; shift
  for env in staging production; do
    out="$tmp/$env.out"
    BITWARE_SKIP_BUILD=1 WRANGLER_LOG=log node_modules/.bin/wrangler deploy --dry-run --env "$env" --outdir "$tmp/$env" >"$out" 2>&1
    rc=$?
    kit_check "wrangler deploy --dry-run --env $env succeeds" "$rc" 0
    [ "$rc" -eq 0 ] || tail -n 20 "$out"
    kit_check "$env: the bundle is written" "$([ -s "$tmp/$env/index.js" ] && echo yes)" yes
    for binding in "$@"; do
      kit_check "$env binds $binding" "$(grep -c "^env.$binding " "$out")" 1
    done
    kit_check "$env: ENVIRONMENT is $env" "$(grep -c "^env.ENVIRONMENT (\"$env\")" "$out")" 1
  done
}

# The lint layer: rustfmt; clippy natively on every target and for wasm32 on
# the code that ships (libraries, the kit's `worker` feature on); rustdoc.
# Every warning is an error (the lint tables in Cargo.toml, clippy.toml).
# `kit_lint [-p PACKAGE]...`: the wasm32 packages (default: the root one).
kit_lint() {
  cargo fmt --all --check &&
    cargo clippy --workspace --all-targets -- -D warnings &&
    cargo clippy --target wasm32-unknown-unknown --lib --features bitware-kit/worker "$@" -- -D warnings &&
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --all-features
}

# A ./test.sh's layers: `layer NAME CMD...` runs CMD as the layer NAME and
# records passed/failed in RESULT[NAME]; `summarize_layers NAME...` prints
# every layer's result and fails when one failed or did not run.
declare -gA RESULT
layer() {
  local name=$1 start=$SECONDS; shift
  printf '\n======== %s ========\n' "$name"
  if "$@"; then RESULT[$name]=passed; else RESULT[$name]=failed; fi
  printf -- '-------- %s %s in %ss\n' "$name" "${RESULT[$name]}" $((SECONDS - start))
}
summarize_layers() {
  local l status passed=0 failed=0
  printf '\n======== summary ========\n'
  for l in "$@"; do
    status=${RESULT[$l]:-did-not-run}
    printf '  %-8s %s\n' "$l" "$status"
    if [ "$status" = passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done
  echo "layers: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
