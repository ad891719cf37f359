#!/usr/bin/env bash
# The README's demo, from nothing: pygoka on a real one-node Kubernetes cluster on this machine.
# It builds what it needs (the cluster's binaries, the images; cached), starts the cluster and a Kafka
# broker the pods reach as kafka:9092, installs the operator with `helm install charts/pygoka-operator`,
# applies examples/k8s/click-count.yaml (a ProcessorGroup and a View), emits clicks, prints the counts
# the View serves, scales the group from 2 to 4 pods, emits and checks again, then removes everything.
#
#   scripts/demo.sh            the Kubernetes demo (about 2 minutes warm)
#   scripts/demo.sh --keep     leave the cluster running at the end (stop: PYGOKA_RUN=.run/demo scripts/k8s.sh stop;
#                              PYGOKA_RUN=.run/demo scripts/kafka.sh stop)
#   scripts/demo.sh --runtime  the runtime-only demo without Kubernetes (scripts/lib/demo-runtime.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${1:-}" == --runtime ]] && exec scripts/lib/demo-runtime.sh
KEEP=0
[[ "${1:-}" == --keep ]] && KEEP=1
source scripts/lib/venv.sh

export PYGOKA_RUN="$PWD/.run/demo"
NAMESPACE=pygoka-demo
TRUTH="$PYGOKA_RUN/truth.json"
say() { printf '\n== %s\n' "$*"; }
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cleanup() {
    local code=$?
    if [[ "$KEEP" == 1 && "$code" == 0 ]]; then
        say "left running (--keep): eval \"\$(PYGOKA_RUN=$PYGOKA_RUN scripts/k8s.sh env)\"; kubectl get pg,views,pods -n $NAMESPACE"
        exit 0
    fi
    say "cleaning up"
    scripts/kafka.sh stop || true
    scripts/k8s.sh stop || true
    exit "$code"
}

say "building the cluster's binaries and the images (cached; the first time takes a while)"
scripts/k8s.sh install
scripts/images.sh build

say "starting a one-node cluster (run dir $PYGOKA_RUN)"
mkdir -p "$PYGOKA_RUN"
rm -f "$TRUTH"
export PYGOKA_K8S_API_PORT="$(free_port)" PYGOKA_ETCD_PORT="$(free_port)" PYGOKA_ETCD_PEER_PORT="$(free_port)"
trap cleanup EXIT
trap 'exit 130' INT TERM
scripts/k8s.sh start
eval "$(scripts/k8s.sh env)"
scripts/images.sh load

export PYGOKA_KAFKA_HOST="$PYGOKA_K8S_HOST_IP" PYGOKA_KAFKA_PORT="$(free_port)" PYGOKA_KAFKA_CONTROLLER_PORT="$(free_port)"
BROKERS="$PYGOKA_KAFKA_HOST:$PYGOKA_KAFKA_PORT"
say "starting Kafka at $BROKERS, for pods kafka:9092 in namespace $NAMESPACE"
scripts/kafka.sh start
kubectl create namespace "$NAMESPACE"
scripts/k8s.sh host-service "$NAMESPACE" kafka 9092 "$PYGOKA_KAFKA_PORT"

say "helm install pygoka-operator charts/pygoka-operator"
helm install pygoka-operator charts/pygoka-operator -n pygoka-system --create-namespace \
    --set kafka.bootstrapServers=kafka:9092 --set replicaCount=2 --set peering.name=pygoka-demo --wait --timeout 180s
kubectl get pods -n pygoka-system

say "kubectl apply -f examples/k8s/click-count.yaml"
kubectl apply -n "$NAMESPACE" -f examples/k8s/click-count.yaml
kubectl wait -n "$NAMESPACE" --for=jsonpath='{.status.readyReplicas}'=2 pg/click-count --timeout=240s
kubectl wait -n "$NAMESPACE" --for=jsonpath='{.status.readyReplicas}'=1 view/click-count --timeout=240s
kubectl get pg,views,pods -n "$NAMESPACE"

say "emitting clicks; the View's counts, read through the API server's service proxy"
"$PYTHON" scripts/lib/demo_clicks.py emit "$BROKERS" user-clicks 12 20000 100 "$TRUTH"
"$PYTHON" scripts/lib/demo_clicks.py check "$NAMESPACE" click-count-view click-count-table "$TRUTH"

say "scaling out: kubectl scale pg/click-count --replicas=4"
kubectl scale -n "$NAMESPACE" pg/click-count --replicas=4
kubectl wait -n "$NAMESPACE" --for=jsonpath='{.status.readyReplicas}'=4 pg/click-count --timeout=240s
kubectl get pg,pods -n "$NAMESPACE"
"$PYTHON" scripts/lib/demo_clicks.py emit "$BROKERS" user-clicks 12 20000 100 "$TRUTH"
"$PYTHON" scripts/lib/demo_clicks.py check "$NAMESPACE" click-count-view click-count-table "$TRUTH"
say "done"
