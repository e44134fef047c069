#!/usr/bin/env bash
# make kind-up: a kind cluster running the chart, from the images of `make images`.
#
#  1. creates the cluster (kind/cluster.yaml; with the offline node image, plus
#     kind/offline-patch.yaml) unless it runs already, with docker when it works, else
#     podman; a cluster whose node is stopped (after a reboot) is deleted and made anew;
#  2. loads every archive of IMAGES_DIR (kind load image-archive);
#  3. checks that a pod running as 65532 can write to a fresh claim of the default
#     StorageClass (managed etcd and the S3 server need it);
#  4. installs the S3 server and its bucket (kind/s3.yaml), `helm upgrade --install`s the
#     chart with kind/values.yaml, applies kind/cluster-resources.yaml (a KafscaleCluster
#     with managed etcd, KafscaleTopics) and waits until all of it is Ready;
#  5. prints how to produce and consume with kcat and how to open the console.
#
# Environment (the Makefile sets the first ones): KIND_CLUSTER, IMAGES_DIR, KUBECTL,
# KIND_OFFLINE (1: the node image is KIND_NODE_IMAGE, built here), KIND_NODE_IMAGE,
# ETCD_VERSION, COREDNS_VERSION; KIND_KAFKA_PORT (9092) and KIND_CONSOLE_PORT (8080) on
# 127.0.0.1; KIND_NAMESPACE (kafscale); KIND_UP_UNTIL=s3 stops once the S3 server and its
# bucket are there, before the chart (tests/e2e).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cluster=${KIND_CLUSTER:-kafscale}
ns=${KIND_NAMESPACE:-kafscale}
kafka_port=${KIND_KAFKA_PORT:-9092}
console_port=${KIND_CONSOLE_PORT:-8080}
kubectl=${KUBECTL:-kubectl}
[ -x "$kubectl" ] || kubectl=kubectl
images=${IMAGES_DIR:?IMAGES_DIR is not set: run make kind-up}
t0=$(date +%s)
step() { printf '%s [%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - t0))" "$*"; }
k() { "$kubectl" --context "kind-$cluster" "$@"; }

[ -f "$images/images.env" ] || { echo "kind-up: no $images/images.env: run make images" >&2; exit 1; }
# shellcheck disable=SC1091
. "$images/images.env"

if docker info >/dev/null 2>&1; then
  provider=docker
else
  export KIND_EXPERIMENTAL_PROVIDER=podman
  provider=podman
fi
# kind mounts the host's /lib/modules into every node; some hosts (VMs, CI sandboxes) have
# none, and creating the cluster then fails with "statfs /lib/modules".
if [ ! -d /lib/modules ]; then
  echo "kind-up: /lib/modules does not exist; creating it empty (kind mounts it into the nodes)"
  mkdir -p /lib/modules
fi

step "1/5 cluster $cluster ($provider, node image ${KIND_NODE_IMAGE:-the provider default})"
if kind get clusters 2>/dev/null | grep -qx "$cluster" &&
  [ "$("$provider" inspect -f '{{.State.Running}}' "$cluster-control-plane" 2>/dev/null)" != true ]; then
  # A reboot, or a killed run, leaves the node container stopped: nothing answers in it, and
  # every later step would fail on it. kind does not restart nodes under podman, and one
  # started by hand may come up on a new address; a new cluster is the dependable way.
  echo "cluster $cluster exists but its node $cluster-control-plane is not running: deleting it and creating it anew"
  KIND_CLUSTER=$cluster "$here/down.sh"
fi
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "cluster $cluster exists; reusing it (make kind-down to start afresh)"
else
  config=$(mktemp)
  trap 'rm -f "$config"' EXIT
  sed -e "s/hostPort: 9092/hostPort: $kafka_port/" -e "s/hostPort: 8080/hostPort: $console_port/" "$here/cluster.yaml" >"$config"
  if [ "${KIND_OFFLINE:-0}" = 1 ]; then
    sed -e "s/@ETCD_VERSION@/${ETCD_VERSION:?}/" -e "s/@COREDNS_VERSION@/${COREDNS_VERSION:?}/" "$here/offline-patch.yaml" >>"$config"
  fi
  kind create cluster --name "$cluster" --config "$config" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 5m
fi

step "2/5 load images"
for a in "$images"/*.tar; do
  kind load image-archive --name "$cluster" "$a"
done
# The first requests made while CoreDNS starts can fail; everything below resolves names.
k -n kube-system rollout status deployment/coredns --timeout 5m

step "3/5 a pod running as 65532 writes to a fresh volume"
k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n "$ns" delete pod/volume-check pvc/volume-check --ignore-not-found --wait >/dev/null
k -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: volume-check
spec:
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: 16Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: volume-check
spec:
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: check
      image: $CHECK_IMAGE
      imagePullPolicy: Never
      args: ["volume", "-dir", "/data"]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - name: data
          mountPath: /data
  volumes:
    - name: data
      persistentVolumeClaim:
        claimName: volume-check
EOF
for _ in $(seq 120); do
  phase=$(k -n "$ns" get pod volume-check -o jsonpath='{.status.phase}')
  case $phase in Succeeded | Failed) break ;; esac
  sleep 1
done
k -n "$ns" logs volume-check || true
if [ "$phase" != Succeeded ]; then
  echo "kind-up: a pod running as 65532 could not write to a volume of the default StorageClass (phase ${phase:-unknown})" >&2
  k -n "$ns" describe pod volume-check >&2 || true
  exit 1
fi
k -n "$ns" delete pod/volume-check pvc/volume-check --wait=false >/dev/null

step "4/5 S3 server, chart, KafscaleCluster"
sed -e "s#@VERSITYGW_IMAGE@#$VERSITYGW_IMAGE#" -e "s#@CHECK_IMAGE@#$CHECK_IMAGE#" "$here/s3.yaml" | k -n "$ns" apply -f -
if ! k -n "$ns" wait job/s3-bucket --for=condition=Complete --timeout 5m; then
  echo "kind-up: the S3 bucket was not created; the Job's pods and their logs:" >&2
  k -n "$ns" get pods -l job-name=s3-bucket -o wide >&2 || true
  k -n "$ns" logs job/s3-bucket --tail 50 >&2 || true
  k -n "$ns" logs deployment/s3 --tail 50 >&2 || true
  exit 1
fi
k -n "$ns" logs job/s3-bucket --tail 20 || true
if [ "${KIND_UP_UNTIL:-}" = s3 ]; then
  # The e2e tier (tests/e2e) installs the chart releases itself.
  step "stopping before the chart (KIND_UP_UNTIL=s3)"
  exit 0
fi
set -- --set operator.image.tag="$IMAGE_TAG" --set operator.brokerImage.tag="$IMAGE_TAG" \
  --set tests.image.tag="$IMAGE_TAG" --set proxy.advertisedPort="$kafka_port" \
  --set operator.extraEnv[0].name=KAFSCALE_OPERATOR_ETCD_IMAGE --set operator.extraEnv[0].value="$ETCD_IMAGE"
# Binaries not built on this branch have no image: their part of the chart stays off.
for c in proxy console; do
  var=$(echo "$c" | tr a-z A-Z)_IMAGE
  if [ -n "${!var:-}" ]; then set -- "$@" --set "$c.image.tag=$IMAGE_TAG"; else set -- "$@" --set "$c.enabled=false"; fi
done
# Not --wait: the proxy and the console follow the managed etcd, which exists only once the
# operator has made the KafscaleCluster's.
helm upgrade --install kafscale "$repo/charts/kafscale" --kube-context "kind-$cluster" -n "$ns" \
  -f "$here/values.yaml" "$@"
k -n "$ns" rollout status deployment/kafscale-operator --timeout 5m
k -n "$ns" apply -f "$here/cluster-resources.yaml"
# Generous: on a busy machine the managed etcd, the S3 bucket and three brokers take minutes.
# (Clients made while the managed etcd's Service is not yet routed redial by themselves:
# internal/etcdclient drops a connection that answers anything but etcd.)
k -n "$ns" wait kafscalecluster/kafscale --for=condition=Ready --timeout 10m
k -n "$ns" wait kafscaletopic --all --for=condition=Ready --timeout 5m
for c in proxy console; do
  var=$(echo "$c" | tr a-z A-Z)_IMAGE
  [ -n "${!var:-}" ] || continue
  k -n "$ns" rollout status "deployment/kafscale-$c" --timeout 5m
done
k -n "$ns" get kafscalecluster,kafscaletopic,pods

step "5/5 ready"
cat <<EOF

KafScale runs on kind cluster $cluster (namespace $ns, kubectl context kind-$cluster).
EOF
if [ -n "${PROXY_IMAGE:-}" ]; then
  cat <<EOF
Kafka, through the proxy at 127.0.0.1:$kafka_port:
  kcat -b 127.0.0.1:$kafka_port -L
  echo "hello kafscale" | kcat -b 127.0.0.1:$kafka_port -P -t demo
  kcat -b 127.0.0.1:$kafka_port -C -t demo -o beginning -e
(The proxy advertises 127.0.0.1:$kafka_port to clients on this host; pods inside the cluster
use its internal listener, kafscale-proxy-internal:9094, which advertises the Service's name:
helm test --kube-context kind-$cluster -n $ns kafscale)
EOF
fi
if [ -n "${CONSOLE_IMAGE:-}" ]; then
  echo "Console: http://127.0.0.1:$console_port (user kafscale, password kafscale)"
fi
echo "Remove it all: make kind-down"
