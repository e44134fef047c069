#!/usr/bin/env bash
# make kind-smoke: checks a cluster made by make kind-up from the host, as a user would.
#
#  - kcat produces RECORDS (10,000) distinct records through the proxy's mapped port, acks=all,
#    into a fresh topic made by a KafscaleTopic (3 partitions), reads the topic back from the
#    beginning, and the records read are exactly the ones produced;
#  - the console's page loads through its mapped port;
#  - the KafscaleCluster is Ready with 3 etcd members and its 3 brokers running.
#  - helm test passes: its pods use the proxy's internal listener (the main one advertises
#    127.0.0.1 for this host, which pods cannot reach).
set -euo pipefail
cluster=${KIND_CLUSTER:-kafscale}
ns=${KIND_NAMESPACE:-kafscale}
kafka=127.0.0.1:${KIND_KAFKA_PORT:-9092}
console=http://127.0.0.1:${KIND_CONSOLE_PORT:-8080}
records=${RECORDS:-10000}
kubectl=${KUBECTL:-kubectl}
[ -x "$kubectl" ] || kubectl=kubectl
k() { "$kubectl" --context "kind-$cluster" -n "$ns" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
topic=smoke-$(date +%s)

echo "== KafscaleCluster, etcd, brokers"
k get kafscalecluster kafscale
k wait kafscalecluster/kafscale --for=condition=Ready --timeout 2m
ready_etcd=$(k get statefulset kafscale-etcd -o jsonpath='{.status.readyReplicas}')
echo "etcd members ready: $ready_etcd (each member's readiness is etcd's /readyz: a voting member with a leader)"
k get pods -l app.kubernetes.io/component=etcd
if [ "$ready_etcd" != 3 ]; then echo "FAIL: $ready_etcd etcd members ready, want 3" >&2; exit 1; fi
k get pods -l app.kubernetes.io/component=broker -o wide
brokers=$(k get kafscalecluster kafscale -o jsonpath='{.status.readyBrokers}')
echo "ready brokers: $brokers"
if [ "${brokers:-0}" -lt 3 ]; then echo "FAIL: $brokers brokers ready, want 3" >&2; exit 1; fi

echo "== $records records through the proxy at $kafka (topic $topic)"
k apply -f - >/dev/null <<EOF
apiVersion: kafscale.io/v1alpha1
kind: KafscaleTopic
metadata:
  name: $topic
spec:
  clusterRef: kafscale
  partitions: 3
EOF
k wait "kafscaletopic/$topic" --for=condition=Ready --timeout 2m
seq -f "kafscale-smoke-%06g" 1 "$records" >"$work/produced"
start=$(date +%s.%N)
kcat -b "$kafka" -t "$topic" -P -X acks=all -l "$work/produced"
mid=$(date +%s.%N)
# Bounded: a partition kcat cannot fetch would keep -e from ever ending.
timeout 120 kcat -b "$kafka" -t "$topic" -C -o beginning -e -q >"$work/consumed" || true
end=$(date +%s.%N)
sort "$work/produced" >"$work/produced.sorted"
sort "$work/consumed" >"$work/consumed.sorted"
if ! cmp -s "$work/produced.sorted" "$work/consumed.sorted"; then
  echo "FAIL: read $(wc -l <"$work/consumed") records, produced $records; diff:" >&2
  diff "$work/produced.sorted" "$work/consumed.sorted" | head -5 >&2 || true
  exit 1
fi
printf 'produced %s records in %.1f s, read back all %s identical in %.1f s\n' "$records" \
  "$(echo "$mid - $start" | bc)" "$(wc -l <"$work/consumed")" "$(echo "$end - $mid" | bc)"
kcat -b "$kafka" -L -t "$topic" | head -8
k delete kafscaletopic "$topic" --wait=false >/dev/null

echo "== console at $console"
code=$(curl -s -o "$work/console.html" -w '%{http_code}' "$console/")
echo "GET / -> $code, $(wc -c <"$work/console.html") bytes: $(grep -o '<title>[^<]*</title>' "$work/console.html" || true)"
if [ "$code" != 200 ]; then echo "FAIL: console answered $code" >&2; exit 1; fi
echo "== helm test (pods through the proxy's internal listener)"
helm test kafscale --kube-context "kind-$cluster" -n "$ns" --timeout 5m --logs
echo "smoke: all passed"
