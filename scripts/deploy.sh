#!/usr/bin/env bash
# npm run deploy / npm run deploy:staging: build and deploy one named
# environment. The top level of wrangler.toml is local development
# (ENVIRONMENT=development, local resource ids): a deploy without --env would
# ship it, so this script always names one and refuses anything else.
# Extra arguments go to wrangler (e.g. --dry-run --outdir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-}
case "$target" in
  production|staging) shift ;;
  *) echo "deploy: name the environment: scripts/deploy.sh production|staging [wrangler args]" >&2
     echo "        (a plain \`wrangler deploy\` would ship ENVIRONMENT=development)" >&2
     exit 2 ;;
esac
scripts/setup.sh
exec node_modules/.bin/wrangler deploy --env "$target" "$@"
