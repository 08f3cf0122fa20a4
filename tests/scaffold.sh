#!/usr/bin/env bash
# tests/scaffold.sh WORKDIR: the scaffold works as promised. scripts/new-worker.sh
# creates a worker in WORKDIR, which then passes its own ./test.sh (setup, unit,
# build, schema, deploy, e2e) as created: its example action is a long job on
# the kit's lifecycle, proved against the mock AI provider (tests/jobs.rs). It shares this project's target directory (the
# scaffold starts it from the same Cargo.lock) and node_modules (the same
# package-lock.json), so nothing already compiled or installed is redone.
# Prints the time from the scaffold command to the green suite.
set -uo pipefail
cd "$(dirname "$0")/.."
work=${1:?usage: tests/scaffold.sh WORKDIR}
root=$PWD
dir="$work/bitware-example-worker"
rm -rf "$dir"
start=$SECONDS
scripts/new-worker.sh example-worker "$dir" || exit 1
ln -s "$root/node_modules" "$dir/node_modules"
# The scaffold's own checks: names filled in, the kit found by a relative path.
if grep -rn -e '__NAME__' -e '__SERVICE__' -e '__CRATE_NAME__' -e '__KIT_PATH__' "$dir" --exclude-dir=node_modules; then
  echo "scaffold: placeholders left in the new worker"; exit 1
fi
grep -q 'bitware-kit = { path = "\.\./' "$dir/Cargo.toml" || { echo "scaffold: the kit is not a relative path dependency"; exit 1; }
for f in src/types src/handlers src/services src/helpers schema/example-worker.sql migrations/0002_initial_schema.sql \
  wrangler.toml dev.sh test.sh .ci/run README.md tests/e2e.rs tests/jobs.rs; do
  [ -e "$dir/$f" ] || { echo "scaffold: $f is missing"; exit 1; }
done
# The kit's migrations come first, byte for byte (the worker's schema layer checks it too).
for f in crates/bitware-kit/migrations/*.sql; do
  cmp -s "$f" "$dir/migrations/$(basename "$f")" || { echo "scaffold: $(basename "$f") is not the kit's migration, unchanged"; exit 1; }
done
for env in staging production; do
  grep -q "^\[env\.$env\]" "$dir/wrangler.toml" || { echo "scaffold: wrangler.toml has no $env environment"; exit 1; }
done
CARGO_TARGET_DIR="$root/target" "$dir/test.sh"
rc=$?
echo "scaffold: from new-worker.sh to the end of its ./test.sh in $((SECONDS - start)) s (rc $rc)"
exit $rc
