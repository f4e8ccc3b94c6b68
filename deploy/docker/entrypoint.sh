#!/bin/sh
# One image, one entrypoint per service: `entrypoint.sh gateway|router|expert|aggregator` runs that service's
# TypeScript through tsx (a runtime dependency, no build step); `entrypoint.sh rsmoe …` runs the CLI.
set -eu
cd /app
service="${1:-}"
[ $# -gt 0 ] && shift
case "$service" in
  gateway|router|expert|aggregator)
    exec node --import tsx "apps/$service/src/main.ts" "$@" ;;
  rsmoe|cli)
    exec node bin/rsmoe.cjs "$@" ;;
  *)
    echo "usage: entrypoint.sh gateway|router|expert|aggregator|rsmoe [args...]" >&2
    exit 64 ;;
esac
