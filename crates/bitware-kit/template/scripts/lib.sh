# The kit's shell library (ports, process groups, wrangler dev with the KAM
# stand-in, migrations, build, setup) and this worker's test stack.
# shellcheck shell=bash

source "$(dirname "${BASH_SOURCE[0]}")/../__KIT_PATH__/scripts/kit.sh"

# start_stack WORKDIR: the worker with fresh local state and the KAM stand-in.
# Exports WORKER_URL (read by bitware_kit::testing) and WORKER_PGID.
start_stack() {
  local work=$1 port
  port=$(free_port)
  mkdir -p "$work/state"
  apply_migrations "$work/state" || return 1
  printf 'SHARED_SECRET=dev-shared-secret\n' | write_private "$work/secrets.env"
  write_kam_vars dev-shared-secret
  start_worker WORKER_PGID "$port" "$work/state" "$work/secrets.env" "$work/wrangler.log" --var "KAM_TIMEOUT_MS:1000"
  if ! wait_http "http://127.0.0.1:$port/" 120 "$WORKER_PGID"; then
    echo "wrangler dev did not start:"; tail -n 40 "$work/wrangler.log"; return 1
  fi
  export WORKER_URL="http://127.0.0.1:$port" WORKER_PGID
  echo "worker on $WORKER_URL"
}
