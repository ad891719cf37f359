#!/usr/bin/env bash
# End-to-end click count on kind, for users with Docker (it is not run by scripts/test.sh: the CI machines
# have no Docker engine; scripts/k8s.sh's control plane covers the operator there, without a kubelet).
#
# What it does, in a throwaway kind cluster:
#   1. builds the runtime, operator and click-count images from docker/*.Dockerfile and `kind load`s them;
#   2. runs a one-node Kafka (KRaft) as the Service `kafka` in the example's namespace;
#   3. `helm install`s charts/pygoka-operator (the operator creates the topics and StatefulSets);
#   4. applies examples/k8s/click-count.yaml with its image replaced by the locally built one;
#   5. emits clicks with pygoka's Emitter from a pod of the click-count image;
#   6. queries the View's Service (`GET /tables/click-count-table/<user>`) through `kubectl port-forward`.
#
# Needs: docker, kind, kubectl, helm, curl. Usage:
#   tests/e2e/kind.sh            # create the cluster, run the flow, keep the cluster for you to look at
#   KEEP=0 tests/e2e/kind.sh     # delete the cluster at the end
# Settings (environment): CLUSTER (default pygoka-e2e), NAMESPACE (default click-count), KAFKA_IMAGE
# (default apache/kafka:4.1.0), CLICKS (default 30), TIMEOUT (kubectl wait timeout, default 300s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER="${CLUSTER:-pygoka-e2e}"
NAMESPACE="${NAMESPACE:-click-count}"
KAFKA_IMAGE="${KAFKA_IMAGE:-apache/kafka:4.1.0}"
CLICKS="${CLICKS:-30}"
TIMEOUT="${TIMEOUT:-300s}"
KEEP="${KEEP:-1}"
# The images scripts/images.sh builds, under the chart's default names (BUILDER=docker: `docker build`).
RUNTIME_IMAGE="$("$ROOT/scripts/images.sh" ref runtime)"
OPERATOR_IMAGE="$("$ROOT/scripts/images.sh" ref operator)"
APP_IMAGE="$("$ROOT/scripts/images.sh" ref click-count)"
CONTEXT="kind-${CLUSTER}"
PORT_FORWARD_PID=""

log() { printf '== %s\n' "$*" >&2; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "kind.sh: $tool is required" >&2; exit 2; }
  done
}

kube() { kubectl --context "$CONTEXT" "$@"; }

cleanup() {
  if [[ -n "$PORT_FORWARD_PID" ]]; then kill "$PORT_FORWARD_PID" 2>/dev/null || true; fi
  if [[ "$KEEP" == "0" ]]; then
    log "deleting kind cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER"
  else
    log "kept kind cluster $CLUSTER (delete it with: kind delete cluster --name $CLUSTER)"
  fi
}

build_images() {
  log "building images"
  BUILDER=docker BASE_IMAGE=python:3.11-slim "$ROOT/scripts/images.sh" build runtime operator click-count
}

create_cluster() {
  if kind get clusters | grep -qx "$CLUSTER"; then
    log "reusing kind cluster $CLUSTER"
  else
    log "creating kind cluster $CLUSTER"
    kind create cluster --name "$CLUSTER" --wait 120s
  fi
  log "loading images into kind"
  kind load docker-image --name "$CLUSTER" "$RUNTIME_IMAGE" "$OPERATOR_IMAGE" "$APP_IMAGE"
}

start_kafka() {
  log "starting Kafka ($KAFKA_IMAGE) as service kafka.$NAMESPACE"
  kube create namespace "$NAMESPACE" --dry-run=client -o yaml | kube apply -f -
  kube apply -n "$NAMESPACE" -f - <<YAML
apiVersion: v1
kind: Service
metadata: {name: kafka}
spec:
  selector: {app: kafka}
  ports: [{name: broker, port: 9092}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kafka}
spec:
  replicas: 1
  selector: {matchLabels: {app: kafka}}
  template:
    metadata: {labels: {app: kafka}}
    spec:
      containers:
        - name: kafka
          image: ${KAFKA_IMAGE}
          ports: [{containerPort: 9092}]
          env:
            - {name: KAFKA_NODE_ID, value: "1"}
            - {name: KAFKA_PROCESS_ROLES, value: "broker,controller"}
            - {name: KAFKA_LISTENERS, value: "PLAINTEXT://:9092,CONTROLLER://:9093"}
            - {name: KAFKA_ADVERTISED_LISTENERS, value: "PLAINTEXT://kafka.${NAMESPACE}.svc:9092"}
            - {name: KAFKA_CONTROLLER_LISTENER_NAMES, value: "CONTROLLER"}
            - {name: KAFKA_LISTENER_SECURITY_PROTOCOL_MAP, value: "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"}
            - {name: KAFKA_CONTROLLER_QUORUM_VOTERS, value: "1@localhost:9093"}
            - {name: KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, value: "1"}
            - {name: KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR, value: "1"}
            - {name: KAFKA_TRANSACTION_STATE_LOG_MIN_ISR, value: "1"}
          readinessProbe:
            tcpSocket: {port: 9092}
            periodSeconds: 5
YAML
  kube rollout status -n "$NAMESPACE" deployment/kafka --timeout "$TIMEOUT"
}

install_operator() {
  log "installing the operator with helm"
  helm --kube-context "$CONTEXT" upgrade --install pygoka-operator "$ROOT/charts/pygoka-operator" \
    --namespace pygoka-system --create-namespace \
    --set image.pullPolicy=Never \
    --set kafka.bootstrapServers="kafka.${NAMESPACE}.svc:9092" --wait --timeout "$TIMEOUT"
}

apply_example() {
  log "applying examples/k8s/click-count.yaml (image $APP_IMAGE)"
  # kind has no registry: the example's image is the one loaded above; pods must not try to pull it.
  sed -e "s|image: localhost/click-count:1|image: ${APP_IMAGE}|" \
      -e "s|bootstrapServers: kafka:9092|bootstrapServers: kafka.${NAMESPACE}.svc:9092|" \
      "$ROOT/examples/k8s/click-count.yaml" | kube apply -n "$NAMESPACE" -f -
  kube patch -n "$NAMESPACE" pg click-count --type merge \
    -p '{"spec":{"podTemplate":{"spec":{"containers":[{"name":"pygoka","imagePullPolicy":"Never"}]}}}}'
  kube patch -n "$NAMESPACE" view click-count --type merge \
    -p '{"spec":{"podTemplate":{"spec":{"containers":[{"name":"pygoka","imagePullPolicy":"Never"}]}}}}'
  kube wait -n "$NAMESPACE" --for=condition=TopicsReady pg/click-count --timeout "$TIMEOUT"
  kube wait -n "$NAMESPACE" --for=condition=Ready pg/click-count --timeout "$TIMEOUT"
  kube wait -n "$NAMESPACE" --for=condition=Ready view/click-count --timeout "$TIMEOUT"
}

emit_clicks() {
  log "emitting $CLICKS clicks for user-1 .. user-3"
  kube run -n "$NAMESPACE" emit-clicks --rm -i --restart=Never --image "$APP_IMAGE" \
    --image-pull-policy=Never --command -- python -c "
from pygoka import Emitter
from pygoka.codec import String
emitter = Emitter('kafka.${NAMESPACE}.svc:9092', 'user-clicks', String())
for i in range(${CLICKS}):
    emitter.emit_sync(f'user-{i % 3 + 1}', 'click')
emitter.finish()
"
}

query_counts() {
  log "querying the View through kubectl port-forward"
  local port=18080 expected=$((CLICKS / 3)) user count deadline
  # The View's query Service (the ProcessorGroup's headless Service is svc/click-count).
  kube port-forward -n "$NAMESPACE" svc/click-count-view "${port}:8080" >/dev/null &
  PORT_FORWARD_PID=$!
  for user in user-1 user-2 user-3; do
    deadline=$((SECONDS + 120))
    count=""
    # The View follows the table topic: poll until the last click is reflected.
    until [[ "$count" == "$expected" ]]; do
      if ((SECONDS > deadline)); then
        echo "kind.sh: $user has count '${count}', expected $expected" >&2
        exit 1
      fi
      sleep 2
      # The answer is {"table": ..., "key": ..., "value": <count>, "encoding": "json"}.
      count="$(curl -fsS "http://127.0.0.1:${port}/tables/click-count-table/${user}" 2>/dev/null \
        | sed -n 's/.*"value": *\([0-9]*\).*/\1/p' || true)"
    done
    log "$user: $count clicks"
  done
}

main() {
  need docker kind kubectl helm curl
  trap cleanup EXIT
  build_images
  create_cluster
  start_kafka
  install_operator
  apply_example
  emit_clicks
  query_counts
  log "click count works on kind"
}

main "$@"
