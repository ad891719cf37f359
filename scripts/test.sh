#!/usr/bin/env bash
# Runs the whole test suite from nothing: creates the virtualenv, installs pygoka with its test
# dependencies, builds the local Kubernetes binaries and installs the node's Debian packages (cached),
# builds the container images (rebuilt only when their inputs change), starts the local Kafka broker,
# runs ruff, mypy and pytest, and stops the broker again. The tests start the Kubernetes clusters
# they use (scripts/k8s.sh, on free ports) and stop them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
bash scripts/lib/chromium.sh
# Built from the Go module proxy once and cached (~15 min cold on 2 cores), plus containerd, runc,
# the CNI plugins, buildah and debootstrap from Debian.
scripts/k8s.sh install
# The Python base from Debian packages (~1 min cold), the runtime, operator and click-count images.
scripts/images.sh build

export PYGOKA_KAFKA_PORT="${PYGOKA_KAFKA_PORT:-9092}"
export PYGOKA_BROKERS="127.0.0.1:${PYGOKA_KAFKA_PORT}"
# Kafka's stock topic settings (auto.create.topics.enable=true, num.partitions=1), as most brokers run.
PYGOKA_KAFKA_TOPIC_DEFAULTS=stock scripts/kafka.sh start
trap 'scripts/kafka.sh stop' EXIT

echo "== ruff"; "$VENV/bin/ruff" check .
echo "== mypy"; "$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
