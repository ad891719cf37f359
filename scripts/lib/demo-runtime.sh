#!/usr/bin/env bash
# The runtime-only demo (scripts/demo.sh --runtime), from nothing: creates the virtualenv,
# starts the local Kafka broker (installing it on first use; see docs/local-kafka.md), then runs examples/2-clicks end to end for a while:
# an emitter of user clicks -> the click-count processor group with RocksDB state -> a view that
# prints the counts every second and serves them over HTTP, queried once. Then it stops everything
# it started. A broker already running on the port (e.g. from scripts/kafka.sh start) is used and
# left running.
#
# Environment:
#   PYGOKA_KAFKA_PORT     broker port (default 9092)
#   PYGOKA_DEMO_SECONDS   how long the view serves (default 20)
#   PYGOKA_DEMO_HTTP_PORT HTTP port of the view (default 0: any free port)
#   PYGOKA_RUN            run dir (default <repo>/.run); the demo's state goes to <run>/demo
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/venv.sh

export PYGOKA_KAFKA_PORT="${PYGOKA_KAFKA_PORT:-9092}"
export PYGOKA_BROKERS="127.0.0.1:${PYGOKA_KAFKA_PORT}"
SECONDS_TO_RUN="${PYGOKA_DEMO_SECONDS:-20}"
HTTP_PORT="${PYGOKA_DEMO_HTTP_PORT:-0}"
DEMO_DIR="${PYGOKA_RUN:-$PWD/.run}/demo"
LOG="$DEMO_DIR/clicks.log"

say() { printf '\n== %s\n' "$*"; }

started_kafka=0
example_pid=""
tail_pid=""
cleanup() {
    local code=$?
    if [[ -n "$example_pid" ]] && kill -0 "$example_pid" 2>/dev/null; then
        kill -TERM "$example_pid" 2>/dev/null || true
        wait "$example_pid" 2>/dev/null || true
    fi
    if [[ -n "$tail_pid" ]]; then
        kill "$tail_pid" 2>/dev/null || true
    fi
    if [[ "$started_kafka" == 1 ]]; then
        say "stopping the Kafka broker this demo started"
        scripts/kafka.sh stop || true
    fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kafka_answers() {
    "$PYTHON" - "$PYGOKA_BROKERS" <<'PY' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
sys.exit(0 if AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5).brokers else 1)
PY
}

say "Kafka at $PYGOKA_BROKERS"
if (exec 3<>"/dev/tcp/127.0.0.1/$PYGOKA_KAFKA_PORT") 2>/dev/null; then
    if ! kafka_answers; then
        echo "port $PYGOKA_KAFKA_PORT is taken by something that is not Kafka; run with" \
            "PYGOKA_KAFKA_PORT=<free port> PYGOKA_KAFKA_CONTROLLER_PORT=<another free port>" >&2
        exit 1
    fi
    echo "a Kafka broker already answers on port $PYGOKA_KAFKA_PORT: using it (and leaving it running)"
elif scripts/kafka.sh status >/dev/null 2>&1; then
    # kafka.sh keeps one broker per run dir; that one listens elsewhere and is not ours to stop.
    echo "the broker of scripts/kafka.sh's run dir is running on another port;" \
        "stop it (scripts/kafka.sh stop) or set PYGOKA_RUN to another directory" >&2
    exit 1
else
    # Set first, so that an interrupted start is cleaned up too: the run dir had no broker before.
    started_kafka=1
    scripts/kafka.sh start
fi

# Fresh local state each time: the processor recovers its table from Kafka if the topics exist.
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
: >"$LOG"

say "examples/2-clicks for ${SECONDS_TO_RUN} s: emitter -> processor group 'mini-group' (RocksDB) -> view"
echo "each [view] line: clicks emitted and processed by this run, then the counts the view holds"
echo "(lines starting with % are librdkafka's log: retries while a fresh broker sets itself up)"
"$PYTHON" -u examples/2-clicks/main.py --brokers "$PYGOKA_BROKERS" --state-dir "$DEMO_DIR/state" \
    --port "$HTTP_PORT" --duration "$SECONDS_TO_RUN" --quiet >"$LOG" 2>&1 &
example_pid=$!
tail -n +1 -f --pid="$example_pid" "$LOG" &
tail_pid=$!

# Wait for the HTTP address the example prints once its view is up.
url=""
for _ in $(seq 1 1200); do
    url=$(sed -n 's|^View opened at \(http://[^ ]*/\)$|\1|p' "$LOG" | head -n 1)
    [[ -n "$url" ]] && break
    kill -0 "$example_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$url" ]]; then
    wait "$example_pid" || true
    echo "the example did not open its view; its output is above (and in $LOG)" >&2
    exit 1
fi

# Query the view's HTTP endpoint halfway through the run.
sleep "$((SECONDS_TO_RUN / 2))"
if command -v curl >/dev/null 2>&1; then
    answer=$(curl -s --max-time 10 "${url}user-3" || true)
else
    answer=$("$PYTHON" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
        "${url}user-3" 2>/dev/null || true)
fi
printf '\n== GET %suser-3 -> %s\n\n' "$url" "$answer"

example_code=0
wait "$example_pid" || example_code=$?
example_pid=""
wait "$tail_pid" 2>/dev/null || true
tail_pid=""

if [[ "$example_code" != 0 ]]; then
    echo "the example failed (exit $example_code); its output is above (and in $LOG)" >&2
    exit 1
fi
if [[ "$answer" != *'"Clicks"'* ]]; then
    echo "the view's HTTP endpoint did not answer with a click count: '$answer'" >&2
    exit 1
fi
say "demo finished: the counts above came from Kafka through the processor's table into the view"
