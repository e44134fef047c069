#!/usr/bin/env bash
# make kind-down: deletes the kind cluster made by make kind-up, with the provider it was
# made with, and its kubeconfig context. Images stay in bin/images and the node image in
# podman's store (make kind-up reuses them).
set -euo pipefail
cluster=${KIND_CLUSTER:-kafscale}
engine=docker
if ! docker info >/dev/null 2>&1; then
  export KIND_EXPERIMENTAL_PROVIDER=podman
  engine=podman
fi
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind delete cluster --name "$cluster"
else
  echo "no kind cluster $cluster"
fi
# kind leaves its network behind; remove it with the last cluster.
if [ -z "$(kind get clusters 2>/dev/null)" ] && "$engine" network inspect kind >/dev/null 2>&1; then
  "$engine" network rm kind >/dev/null && echo "removed the $engine network kind"
fi
