#!/usr/bin/env bash
# scripts/new-worker.sh NAME [DIR]: create the next AI Factory worker from
# bitware-kit's template (crates/bitware-kit/template): the seed's layout
# (src/{types,handlers,services,helpers}, schema/, migrations/), wrangler.toml
# with local, staging and production environments, dev.sh, test.sh, .ci/run,
# a README, an example `POST /api/execute` action and a test suite that passes
# as created (public endpoints, every route x every credential tier, the error
# model, the example action as a long job on bitware_kit::jobs end to end
# against the root's mock AI provider).
#
#   NAME  the worker's short name, lowercase with dashes: content-generator
#         → service bitware-content-generator, crate content_generator
#   DIR   where to create it (default ../bitware-NAME); must not exist or be empty
#
# The new worker depends on the kit by a relative path and starts from this
# project's Cargo.lock and package-lock.json, so it resolves the same crate
# versions: with CARGO_TARGET_DIR shared with this project, none is compiled
# again. Its scripts source the kit's shell library and run the kit's KAM stand-in.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kit="$root/crates/bitware-kit"

name=${1:-}
if ! [[ "$name" =~ ^[a-z][a-z0-9]*(-[a-z0-9]+)*$ ]]; then
  echo "usage: scripts/new-worker.sh NAME [DIR]   (NAME: lowercase words joined by '-', e.g. content-generator)" >&2
  exit 2
fi
service="bitware-$name"
crate=${name//-/_}
dir=${2:-$root/../$service}
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  echo "new-worker: $dir exists and is not empty" >&2
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
kit_path=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$kit" "$dir")

cp -R "$kit/template/." "$dir/"
# The kit's job lifecycle tables come first, unchanged and under their own
# names; the template's own migrations are numbered after them (the schema
# layer of the new worker's ./test.sh checks the copies stay byte-identical).
cp "$kit"/migrations/*.sql "$dir/migrations/"
mv "$dir/gitignore" "$dir/.gitignore"
mv "$dir/schema/__NAME__.sql" "$dir/schema/$name.sql"
cp "$root/Cargo.lock" "$root/package-lock.json" "$root/package.json" "$dir/"
# package.json: this worker's name and scripts; the pinned tools (and the
# lock file, byte for byte, so an installed node_modules stays valid) as they are.
python3 - "$dir/package.json" "$service" <<'PY'
import json, sys
path, service = sys.argv[1:3]
with open(path) as f:
    data = json.load(f)
data["name"] = service
data["description"] = f"Pinned JS tooling for building and running {service} locally (wrangler, workerd, esbuild, binaryen)."
data["scripts"] = {"dev": "./dev.sh", "test": "./test.sh"}
with open(path, "w") as f:
    json.dump(data, f, indent=2)
    f.write("\n")
PY
grep -rlZ -e '__NAME__' -e '__SERVICE__' -e '__CRATE_NAME__' -e '__KIT_PATH__' "$dir" --exclude=Cargo.lock --exclude='package*.json' |
  xargs -0 sed -i -e "s#__NAME__#$name#g" -e "s#__SERVICE__#$service#g" -e "s#__CRATE_NAME__#$crate#g" -e "s#__KIT_PATH__#$kit_path#g"
chmod +x "$dir/dev.sh" "$dir/test.sh" "$dir/.ci/run" "$dir"/scripts/*.sh

cat <<MSG
Created $service in $dir (kit: $kit_path).
  cd $dir && ./test.sh     # setup, unit, build, e2e: green as created
  ./dev.sh                 # run it on http://127.0.0.1:8787 with the KAM stand-in
Share compiled dependencies with this project: export CARGO_TARGET_DIR=$root/target
MSG
