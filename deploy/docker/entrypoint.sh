#!/bin/sh
# One image, one entrypoint per service: `entrypoint.sh gateway|router|expert|aggregator|scene-worker` runs that service's
# compiled JavaScript (apps/<service>/src/main.js, built by `npm run build` in the image); `entrypoint.sh rsmoe …`
# runs the CLI (e.g. `rsmoe keys create`). No TypeScript, tsx or esbuild at run time.
# SERVICE_NODE_FLAGS: Node flags of the services (default --single-threaded-gc --heap-growing-percent=200, as
# `rsmoe start` runs them: fewer and cheaper collections on a few cores; README "Performance"); empty for V8's defaults.
set -eu
cd /app
service="${1:-}"
[ $# -gt 0 ] && shift
case "$service" in
  gateway|router|expert|aggregator|scene-worker)
    # shellcheck disable=SC2086 # the flags are a list of words
    exec node ${SERVICE_NODE_FLAGS---single-threaded-gc --heap-growing-percent=200} "apps/$service/src/main.js" "$@" ;;
  rsmoe|cli)
    exec node apps/cli/src/main.js "$@" ;;
  *)
    echo "usage: entrypoint.sh gateway|router|expert|aggregator|scene-worker|rsmoe [args...]" >&2
    exit 64 ;;
esac
