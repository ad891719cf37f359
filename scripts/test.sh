#!/usr/bin/env bash
# Runs the whole test suite from nothing: creates the virtualenv, installs pygoka with its test
# dependencies, starts the local Kafka broker (installing it on first use), runs ruff, mypy and
# pytest, and stops the broker again. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
bash scripts/lib/chromium.sh
# The local Kubernetes control plane is built from the Go module proxy once and cached (~14 min cold).
scripts/k8s.sh install

export PYGOKA_KAFKA_PORT="${PYGOKA_KAFKA_PORT:-9092}"
export PYGOKA_BROKERS="127.0.0.1:${PYGOKA_KAFKA_PORT}"
# Kafka's stock topic settings (auto.create.topics.enable=true, num.partitions=1), as most brokers run.
PYGOKA_KAFKA_TOPIC_DEFAULTS=stock scripts/kafka.sh start
trap 'scripts/kafka.sh stop' EXIT

echo "== ruff"; "$VENV/bin/ruff" check .
echo "== mypy"; "$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
