# Shared by dev.sh, test.sh and bench.sh: free ports, starting and stopping
# the processes they own (always by PID / process group, never by name).
# shellcheck shell=bash

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
  printf 'SHARED_SECRET=%s\n' "$1" | write_private dev/kam/.dev.vars
}

# start_worker VAR PORT STATE_DIR ENV_FILE LOG [--var K:V ...]: wrangler dev with
# the KAM stand-in; its process group id goes to VAR.
start_worker() {
  local var=$1 port=$2 state=$3 env_file=$4 log=$5; shift 5
  GRANULATOR_SKIP_BUILD=1 WRANGLER_LOG=$WORKER_LOG_LEVEL start_bg "$var" "$log" node_modules/.bin/wrangler dev \
    -c wrangler.toml -c dev/kam/wrangler.toml \
    --ip 127.0.0.1 --port "$port" --inspector-port "$(free_port)" \
    --persist-to "$state" --env-file "$env_file" \
    --show-interactive-dev-session=false --test-scheduled "$@"
}

apply_migrations() {
  node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$1" >/dev/null
}

# Attempt timeout of the stack below; the soak's injected hangs outlast it.
STACK_ATTEMPT_TIMEOUT_MS=1500
# Prices the operator declares on top of the defaults: an older Claude model,
# and a self-hosted model that is free (0 is a valid price; undeclared
# models are refused while a budget applies).
STACK_PRICING='{"models":{"claude-3-5-haiku-latest":{"input":0.8,"output":4.0},"local-llama":{"input":0,"output":0}}}'

# A stream silent this long is retried (tests/async_jobs.rs stalls the mock past it;
# generous, so a loaded CI box is not mistaken for a stalled provider).
STACK_STREAM_STALL_MS=3000
# Queued jobs whose topic holds this marker make the consumer fail (dead-letter test).
STACK_QUEUE_FAULT_MARKER=queue-fault-marker

# start_stack WORKDIR [MOCK_DELAY_MS]: the mock AI provider and the worker with
# fresh local state, wired together. Exports GRANULATOR_URL, MOCK_URL, STATE_DIR
# and WORKER_PGID (the wrangler/workerd process group).
start_stack() {
  local work=$1 mock_port worker_port mock_pid
  mock_port=$(free_port)
  worker_port=$(free_port)
  start_bg mock_pid "$work/mock.log" target/release/mock-ai --port "$mock_port"
  wait_http "http://127.0.0.1:$mock_port/__mock/health" 20 "$mock_pid" || { echo "mock AI did not start"; cat "$work/mock.log"; return 1; }
  mkdir -p "$work/state"
  apply_migrations "$work/state" || return 1
  printf 'SHARED_SECRET=dev-shared-secret\nOPENAI_API_KEY=mock-openai-key\nANTHROPIC_API_KEY=mock-anthropic-key\n' | write_private "$work/secrets.env"
  write_kam_vars dev-shared-secret
  start_worker WORKER_PGID "$worker_port" "$work/state" "$work/secrets.env" "$work/wrangler.log" \
    --var "OPENAI_BASE_URL:http://127.0.0.1:$mock_port/v1" \
    --var "ANTHROPIC_BASE_URL:http://127.0.0.1:$mock_port" \
    --var "AI_PROVIDER_ORDER:openai,anthropic" \
    --var "AI_ATTEMPT_TIMEOUT_MS:$STACK_ATTEMPT_TIMEOUT_MS" --var "AI_BACKOFF_BASE_MS:50" --var "AI_RETRY_AFTER_CAP_MS:1500" \
    --var "KAM_TIMEOUT_MS:1000" --var "PRICING:$STACK_PRICING" \
    --var "AI_STREAM_STALL_MS:$STACK_STREAM_STALL_MS" --var "QUEUE_FAULT_MARKER:$STACK_QUEUE_FAULT_MARKER"
  if ! wait_http "http://127.0.0.1:$worker_port/" 120 "$WORKER_PGID"; then
    echo "wrangler dev did not start:"; tail -n 40 "$work/wrangler.log"; return 1
  fi
  D1_FILE=$(d1_file "$work/state")
  export GRANULATOR_URL="http://127.0.0.1:$worker_port" MOCK_URL="http://127.0.0.1:$mock_port" STATE_DIR="$work/state" WORKER_PGID D1_FILE
  echo "worker on $GRANULATOR_URL, mock AI on $MOCK_URL"
}

# start_floor WORKDIR: bench/floor (built by `scripts/build.sh --floor`) on its
# own local D1 with the granulator's migrations. Exports FLOOR_URL and
# FLOOR_PGID (its wrangler/workerd process group).
start_floor() {
  local work=$1 port
  port=$(free_port)
  mkdir -p "$work/state"
  node_modules/.bin/wrangler d1 migrations apply DB --local -c bench/floor/wrangler.toml --persist-to "$work/state" >/dev/null || return 1
  start_bg FLOOR_PGID "$work/wrangler.log" node_modules/.bin/wrangler dev -c bench/floor/wrangler.toml \
    --ip 127.0.0.1 --port "$port" --inspector-port "$(free_port)" --persist-to "$work/state" \
    --show-interactive-dev-session=false
  if ! wait_http "http://127.0.0.1:$port/" 120 "$FLOOR_PGID"; then
    echo "the floor did not start:"; tail -n 40 "$work/wrangler.log"; return 1
  fi
  export FLOOR_URL="http://127.0.0.1:$port" FLOOR_PGID
  echo "floor on $FLOOR_URL"
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
