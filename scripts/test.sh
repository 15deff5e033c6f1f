#!/usr/bin/env bash
# The test command: set up (idempotent; builds the components), then run every test:
# the guest crates' unit tests (natively) and the host's unit and end-to-end tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
# Guest crates are plain Rust apart from their WIT imports: their logic tests run natively
# with the guest toolchain setup chose (scripts/guest-cargo.sh --native), in a target
# directory of that toolchain's own (the two rustc versions' crates do not mix).
guest=$(sed -n 's/^GUEST_TOOLCHAIN=//p' .deps/guest.env)
for ws in components tests/components; do
    (cd "$ws" && CARGO_TARGET_DIR="$root/target/guest-native-$guest" "$root/scripts/guest-cargo.sh" --native test --quiet)
done
# The weights fetcher, against a loopback server (scripts/test_weights.py).
.deps/venv/bin/python scripts/test_weights.py 2> target/test_weights.log ||
    { cat target/test_weights.log >&2; echo "scripts/test_weights.py failed" >&2; exit 1; }
# The Kubernetes manifests: the same as their generator writes, and valid objects for the
# Kubernetes version named (schemas bundled in the package; no cluster needed). Its warnings
# fail too: an unknown kind or apiVersion is only a warning ("couldn't find schema").
python3 deploy/kubernetes/generate.py --check
k8s=$(.deps/venv/bin/kubernetes-validate -k 1.32.0 --strict --quiet \
    deploy/kubernetes/cpu.yaml deploy/kubernetes/gpu.yaml 2>&1) && [ -z "$k8s" ] ||
    { printf '%s\n' "$k8s" >&2; echo "deploy/kubernetes: the manifests do not validate" >&2; exit 1; }
cargo test --workspace --no-fail-fast "$@"
