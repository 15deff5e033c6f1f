#!/usr/bin/env bash
# Compatibility wrapper for users of the original Python orchestrator: the same verbs,
# handed to the `host` binary (scripts/host), which does all the work.
#   ./orchestrator.sh up | up -d | down | status | logs [-f] [INSTANCE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
    up|down|status|logs) exec "$here/scripts/host" "$@" ;;
    *) echo "usage: $0 up [-d] | down | status | logs [-f] [INSTANCE]" >&2; exit 2 ;;
esac
