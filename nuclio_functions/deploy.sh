#!/usr/bin/env bash
# Deploy the generated functions in this folder to a stock Nuclio for CVAT.
#
#   nuclio_functions/deploy.sh [options] [FUNCTION...]     (default: every folder with a function.yaml)
#     --platform local|kube   nuctl platform (default local)
#     --namespace NS          kube namespace (default nuclio)
#     --registry URL          push images to this registry (kube needs one)
#     --run-registry URL      registry the cluster pulls from, if different
#     --network NAME          docker network of CVAT (local; default cvat_cvat)
#     --no-pull               use local base images (offline)
#     --dry-run               print the nuctl commands instead of running them
#
# Each function is a thin Python proxy to the host's instance port (see its function.yaml:
# CVAT_WASM_HOST_URL); the models run in the host, not in the function containers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
platform=local namespace=nuclio registry="" run_registry="" network=cvat_cvat no_pull="" dry=""
functions=()
while [ $# -gt 0 ]; do
    case "$1" in
        --platform) platform=$2; shift 2 ;;
        --namespace) namespace=$2; shift 2 ;;
        --registry) registry=$2; shift 2 ;;
        --run-registry) run_registry=$2; shift 2 ;;
        --network) network=$2; shift 2 ;;
        --no-pull) no_pull=1; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) functions+=("$1"); shift ;;
    esac
done
if [ ${#functions[@]} -eq 0 ]; then
    for f in "$here"/*/function.yaml; do [ -f "$f" ] && functions+=("$(basename "$(dirname "$f")")"); done
fi
[ ${#functions[@]} -gt 0 ] || { echo "no functions in $here (run: host nuclio)" >&2; exit 1; }

run() {
    echo "+ $*"
    [ -n "$dry" ] || "$@"
}

common=(--platform "$platform")
[ "$platform" = kube ] && common+=(--namespace "$namespace")
if [ -z "$dry" ] && ! command -v nuctl >/dev/null; then
    echo "nuctl not found: install the nuctl matching your Nuclio dashboard (CVAT 2.73 ships 1.16.3)" >&2
    exit 1
fi
run nuctl create project cvat "${common[@]}" || echo "(project cvat exists)"
for name in "${functions[@]}"; do
    dir="$here/$name"
    [ -f "$dir/function.yaml" ] || { echo "no $dir/function.yaml" >&2; exit 1; }
    args=(deploy --project-name cvat --path "$dir" --file "$dir/function.yaml" "${common[@]}")
    [ -n "$registry" ] && args+=(--registry "$registry")
    [ -n "$run_registry" ] && args+=(--run-registry "$run_registry")
    [ -n "$no_pull" ] && args+=(--no-pull)
    [ "$platform" = local ] && args+=(--platform-config "{\"attributes\": {\"network\": \"$network\"}}")
    run nuctl "${args[@]}"
    echo "${dry:+(dry run) }deployed $name"
done
run nuctl get function "${common[@]}"
