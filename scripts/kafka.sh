#!/usr/bin/env bash
# Install, start and stop a real single-node KRaft Apache Kafka broker on
# 127.0.0.1 (or PYGOKA_KAFKA_HOST) for pygoka's tests, demo and benchmarks. See docs/local-kafka.md.
#
#   scripts/kafka.sh install            resolve the broker's jars from Maven Central (cached)
#   scripts/kafka.sh start              install if needed, start, wait until it answers
#   scripts/kafka.sh stop               SIGTERM (SIGKILL after 30 s); fine if not running
#   scripts/kafka.sh status             running or not, port, pid, RSS (exit 3 if stopped)
#   scripts/kafka.sh restart-keep-data  stop, then start on the same data dir
#   scripts/kafka.sh logs [N]           last N (default 100) lines of server.log
#   scripts/kafka.sh bootstrap          print the bootstrap servers (127.0.0.1:PORT)
#   scripts/kafka.sh client-config      print the SASL_SSL listener's client settings dir (PYGOKA_KAFKA_CONFIG_DIR)
#
# Environment:
#   PYGOKA_KAFKA_VERSION          Kafka version (default 4.4.0; must be 4.x)
#   PYGOKA_CACHE                  cache dir (default ~/.cache/pygoka); jars in kafka-<version>/libs
#   PYGOKA_RUN                    run dir (default <repo>/.run); broker files in <run>/kafka
#   PYGOKA_KAFKA_HOST             PLAINTEXT listener address, advertised as is (default 127.0.0.1; the local
#                                 Kubernetes node's PYGOKA_K8S_HOST_IP serves this machine and the pods)
#   PYGOKA_KAFKA_PORT             PLAINTEXT listener port (default 9092)
#   PYGOKA_KAFKA_CONTROLLER_PORT  KRaft controller port (default: the listener port + 1, 9093)
#   PYGOKA_KAFKA_KEEP_DATA=1      start on the existing data dir (default: a fresh one each start)
#   PYGOKA_KAFKA_CLUSTER_ID       cluster id of a fresh data dir (default: a random one)
#   PYGOKA_KAFKA_HEAP             JVM heap, -Xms = -Xmx (default 512m; less breaks the log cleaner)
#   PYGOKA_KAFKA_JAVA_OPTS        extra JVM options
#   PYGOKA_KAFKA_CLASSPATH        extra classpath entries before the broker's jars (e.g. a topic policy)
#   PYGOKA_KAFKA_SASL_SSL_PORT    also a SASL_SSL listener there: TLS (certificates made by openssl) and
#                                 SASL/SCRAM-SHA-512 (users pygoka and admin); see scripts/kafka/sasl-ssl.sh
#   PYGOKA_KAFKA_SSL_SANS         extra subjectAltNames of the SASL_SSL broker's certificate besides IP:<host>
#                                 and DNS:localhost, comma-separated as openssl takes them: the names clients
#                                 dial (hostname verification stays on), e.g. DNS:kafka,DNS:kafka.demo.svc for
#                                 pods dialling a Service kafka and the operator its qualified name
#   PYGOKA_KAFKA_TOPIC_DEFAULTS   stock (default: Kafka's auto.create.topics.enable=true, num.partitions=1)
#                                 or strict (auto.create.topics.enable=false)
#   PYGOKA_KAFKA_EXTRA_PROPERTIES path of a file appended to server.properties (later keys win)
#   PYGOKA_KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 120)
#   PYTHON                        python used for the readiness check (default python3); with
#                                 confluent_kafka it asks the broker for metadata, without it
#                                 a TCP check plus the "Kafka Server started" log line is used
#   JAVA, MVN                     java and mvn binaries (default: from PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
TEMPLATE_DIR="$SCRIPT_DIR/kafka"

KAFKA_VERSION="${PYGOKA_KAFKA_VERSION:-4.4.0}"
CACHE_DIR="${PYGOKA_CACHE:-$HOME/.cache/pygoka}"
RUN_ROOT="${PYGOKA_RUN:-$REPO_DIR/.run}"
# Absolute paths: the broker runs in its run dir, and its command line (with
# the path of its server.properties) identifies it.
[[ "$CACHE_DIR" == /* ]] || CACHE_DIR="$PWD/$CACHE_DIR"
[[ "$RUN_ROOT" == /* ]] || RUN_ROOT="$PWD/$RUN_ROOT"

INSTALL_DIR="$CACHE_DIR/kafka-$KAFKA_VERSION"
LIBS_DIR="$INSTALL_DIR/libs"
INSTALL_MARKER="$INSTALL_DIR/.installed"

RUN_DIR="$RUN_ROOT/kafka"
DATA_DIR="$RUN_DIR/data"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/server.log"
STDOUT_FILE="$RUN_DIR/stdout.log"
PROPS_FILE="$RUN_DIR/server.properties"
CLUSTER_ID_FILE="$RUN_DIR/cluster.id"

PORT="${PYGOKA_KAFKA_PORT:-9092}"
# Checked here, before the controller port's default is computed from it (shell arithmetic would take a
# name for a variable and a stray character for an error of its own).
if [[ ! "$PORT" =~ ^[1-9][0-9]{0,4}$ ]] || (( PORT < 1 || PORT > 65534 )); then
    printf 'kafka.sh: error: PYGOKA_KAFKA_PORT must be a port number from 1 to 65534, got %q\n' "$PORT" >&2
    exit 1
fi
CONTROLLER_PORT="${PYGOKA_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HOST="${PYGOKA_KAFKA_HOST:-127.0.0.1}"
HEAP="${PYGOKA_KAFKA_HEAP:-512m}"
TOPIC_DEFAULTS="${PYGOKA_KAFKA_TOPIC_DEFAULTS:-stock}"
SASL_SSL_PORT="${PYGOKA_KAFKA_SASL_SSL_PORT:-}"
START_TIMEOUT="${PYGOKA_KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT=30
PYTHON="${PYTHON:-python3}"
READY_MODE="log"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"

if [[ -n "$SASL_SSL_PORT" ]]; then
    # shellcheck source=kafka/sasl-ssl.sh
    source "$TEMPLATE_DIR/sasl-ssl.sh"
fi

MAVEN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Serialise concurrent invocations on one lock file (e.g. two test sessions
# starting the broker at once). flock is in util-linux; without it, no lock.
with_lock() {
    local lock_file="$1"
    shift
    mkdir -p "$(dirname "$lock_file")"
    if command -v flock >/dev/null 2>&1; then
        (
            flock 9
            "$@"
        ) 9>"$lock_file"
    else
        "$@"
    fi
}

# ---------------------------------------------------------------- install --

install_unlocked() {
    if [[ -f "$INSTALL_MARKER" ]]; then
        return 0
    fi
    command -v "$MVN" >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Kafka 4.x needs Java 17+)"
    log "installing Apache Kafka $KAFKA_VERSION into $INSTALL_DIR (from Maven Central)"
    local t0 tmp
    t0=$(date +%s.%N)
    mkdir -p "$INSTALL_DIR"
    tmp="$INSTALL_DIR/libs.tmp.$$"
    rm -rf "$tmp"
    # Maven's own repository stays the default (~/.m2/repository). Its output
    # (only escape codes with -q when all goes well) is shown on failure.
    if ! "$MVN" -B -q -f "$TEMPLATE_DIR/pom.xml" \
        -Dkafka.version="$KAFKA_VERSION" \
        "$MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime \
        -DoutputDirectory="$tmp" >"$INSTALL_DIR/mvn.log" 2>&1; then
        cat "$INSTALL_DIR/mvn.log" >&2
        rm -rf "$tmp"
        die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (log: $INSTALL_DIR/mvn.log)"
    fi
    if [[ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
        rm -rf "$tmp"
        die "kafka_2.13-$KAFKA_VERSION.jar missing after dependency copy"
    fi
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    local n
    n=$(find "$LIBS_DIR" -maxdepth 1 -name '*.jar' | wc -l)
    printf 'version=%s\njars=%s\ninstalled=%s\n' "$KAFKA_VERSION" "$n" "$(date -u +%FT%TZ)" >"$INSTALL_MARKER"
    log "installed $n jars in $(elapsed_since "$t0") s"
}

cmd_install() {
    with_lock "$INSTALL_DIR.lock" install_unlocked
    log "Kafka $KAFKA_VERSION: $(find "$LIBS_DIR" -maxdepth 1 -name '*.jar' | wc -l) jars in $LIBS_DIR"
}

# ---------------------------------------------------------------- helpers --

elapsed_since() {
    local t0="$1" t1
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

# The pid from the pid file, if that process is alive and is our broker.
broker_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid=$(<"$PID_FILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    # Guard against a recycled pid: it must be kafka.Kafka on our properties. The pid file is written just
    # before `exec java`, and while an exec runs the command line reads empty (4 reads in 100 right after the
    # file appeared, none 50 ms later): an empty one is read again for up to a second (a zombie's stays empty).
    local cmdline="" i
    for ((i = 0; i < 20; i++)); do
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        [[ -z "$cmdline" ]] || break
        sleep 0.05
    done
    [[ "$cmdline" == *kafka.Kafka*"$PROPS_FILE"* ]] || return 1
    printf '%s\n' "$pid"
}

port_open() {
    # bash's /dev/tcp; the subshell keeps the fd (and any error) local.
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

python_has_confluent_kafka() {
    command -v "$PYTHON" >/dev/null 2>&1 &&
        "$PYTHON" -c 'import confluent_kafka.admin' >/dev/null 2>&1
}

# Ask the broker for cluster metadata; succeeds once it serves clients.
# Then warm the group coordinator up: the first FindCoordinator creates
# __consumer_offsets, and a consumer that arrives during that creation backs
# off for up to ~3 s (measured, librdkafka); doing it here takes ~0.3 s and
# makes the first group join of a test take ~0.3 s as on a warm broker.
# Exit 0: ready (a failed warm-up only prints a warning), 1: not ready yet.
admin_ready() {
    "$PYTHON" - "$HOST:$PORT" <<'PY' >/dev/null
import sys
import time

from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
try:
    if not admin.list_topics(timeout=5).brokers:
        sys.exit(1)
except Exception:
    sys.exit(1)
deadline = time.monotonic() + 20
while True:
    try:
        fut = admin.describe_consumer_groups(["pygoka-warmup"], request_timeout=5)
        fut["pygoka-warmup"].result()
        break
    except Exception as exc:  # NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS...
        if time.monotonic() > deadline:
            print(f"kafka.sh: warning: group coordinator not ready: {exc}", file=sys.stderr)
            break
        time.sleep(0.1)
PY
}

broker_ready() {
    port_open "$PORT" || return 1
    if [[ "$READY_MODE" == admin ]]; then
        admin_ready
    else
        grep -qE 'Kafka Server started|started \(kafka\.server' "$LOG_FILE" 2>/dev/null
    fi
}

# The PLAINTEXT port of the broker started from this run dir.
running_port() {
    sed -n 's|^listeners=PLAINTEXT://[^:]*:\([0-9]*\),.*|\1|p' "$PROPS_FILE" 2>/dev/null | head -n 1
}

# The broker's jars, after PYGOKA_KAFKA_CLASSPATH (the storage tool reads the same settings, classes included).
classpath() {
    printf '%s%s/*' "${PYGOKA_KAFKA_CLASSPATH:+$PYGOKA_KAFKA_CLASSPATH:}" "$LIBS_DIR"
}

rss_of() {
    awk '/^VmRSS:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true
}

new_cluster_id() {
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22 chars). Like Kafka's own
    # Uuid.randomUuid(), draw again when it starts with '-': the tools would read it as an option.
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ "$id" != -* ]] && break
    done
    printf '%s\n' "$id"
}

render_config() {
    mkdir -p "$RUN_DIR"
    sed -e "s|@HOST@|$HOST|g" -e "s|@PORT@|$PORT|g" \
        -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@LOG_DIR@|$DATA_DIR|g" \
        "$TEMPLATE_DIR/server.properties.in" >"$PROPS_FILE.tmp"
    case "$TOPIC_DEFAULTS" in
    stock) ;;
    strict) printf '\n# --- PYGOKA_KAFKA_TOPIC_DEFAULTS=strict\nauto.create.topics.enable=false\n' >>"$PROPS_FILE.tmp" ;;
    *) die "PYGOKA_KAFKA_TOPIC_DEFAULTS=$TOPIC_DEFAULTS: expected stock or strict" ;;
    esac
    if [[ -n "$SASL_SSL_PORT" ]]; then sasl_ssl_configure "$PROPS_FILE.tmp"; fi
    if [[ -n "${PYGOKA_KAFKA_EXTRA_PROPERTIES:-}" ]]; then
        [[ -f "$PYGOKA_KAFKA_EXTRA_PROPERTIES" ]] ||
            die "PYGOKA_KAFKA_EXTRA_PROPERTIES=$PYGOKA_KAFKA_EXTRA_PROPERTIES is not a file"
        {
            printf '\n# --- from %s\n' "$PYGOKA_KAFKA_EXTRA_PROPERTIES"
            cat "$PYGOKA_KAFKA_EXTRA_PROPERTIES"
        } >>"$PROPS_FILE.tmp"
    fi
    mv "$PROPS_FILE.tmp" "$PROPS_FILE"
}

# Format the data dir: a fresh one with a new cluster id, or (keep-data) the
# existing one with its own cluster id and --ignore-formatted.
format_storage() {
    local cluster_id meta="$DATA_DIR/meta.properties"
    if [[ "${PYGOKA_KAFKA_KEEP_DATA:-0}" == 1 && -f "$meta" ]]; then
        cluster_id=$(sed -n 's/^cluster\.id=//p' "$meta")
        [[ -n "$cluster_id" ]] || die "no cluster.id in $meta"
        log "keeping data dir $DATA_DIR (cluster id $cluster_id)"
        printf '%s\n' "$cluster_id" >"$CLUSTER_ID_FILE"
        # Already formatted: skip the formatting JVM (~1 s). Formatting again
        # with --ignore-formatted would be a no-op.
        if [[ -d "$DATA_DIR/__cluster_metadata-0" ]]; then
            return 0
        fi
    else
        if [[ "${PYGOKA_KAFKA_KEEP_DATA:-0}" == 1 ]]; then
            log "PYGOKA_KAFKA_KEEP_DATA=1 but no formatted data dir yet: creating one"
        fi
        rm -rf "$DATA_DIR"
        cluster_id=${PYGOKA_KAFKA_CLUSTER_ID:-$(new_cluster_id)}
        if [[ -n "$SASL_SSL_PORT" ]]; then sasl_ssl_make_files; fi
    fi
    printf '%s\n' "$cluster_id" >"$CLUSTER_ID_FILE"
    local -a scram=()
    if [[ -n "$SASL_SSL_PORT" ]]; then mapfile -t scram < <(sasl_ssl_scram_args); fi
    if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$TEMPLATE_DIR/log4j2.xml" \
        -Dpygoka.kafka.log.file="$RUN_DIR/format.log" \
        -cp "$(classpath)" kafka.tools.StorageTool format \
        --cluster-id="$cluster_id" -c "$PROPS_FILE" --ignore-formatted "${scram[@]}" >"$RUN_DIR/format.out" 2>&1; then
        cat "$RUN_DIR/format.out" >&2
        die "formatting $DATA_DIR failed"
    fi
}

print_log_tail() {
    local f
    for f in "$STDOUT_FILE" "$LOG_FILE"; do
        if [[ -s "$f" ]]; then
            log "---- last lines of $f ----"
            tail -n 40 "$f" >&2
        fi
    done
    if grep -qE '^\[[^]]*\] (ERROR|FATAL) ' "$LOG_FILE" 2>/dev/null; then
        log "---- first errors in $LOG_FILE ----"
        grep -E -A1 '^\[[^]]*\] (ERROR|FATAL) ' "$LOG_FILE" | head -n 10 >&2
    fi
}

# ------------------------------------------------------------------ start --

start_unlocked() {
    local t0 pid
    t0=$(date +%s.%N)
    if python_has_confluent_kafka; then
        READY_MODE="admin"
    else
        READY_MODE="log"
        log "note: $PYTHON lacks confluent_kafka; readiness = TCP port + 'Kafka Server started' in the log"
    fi

    if pid=$(broker_pid); then
        local rport
        rport=$(running_port)
        if [[ "$rport" != "$PORT" ]]; then
            die "already running on port $rport (pid $pid, run dir $RUN_DIR), not $PORT: stop it first"
        fi
        if broker_ready; then
            log "already running (pid $pid, $HOST:$PORT): nothing to do"
            return 0
        fi
        log "pid $pid is running but not ready yet: waiting for it"
    else
        rm -f "$PID_FILE"
        if port_open "$PORT"; then
            die "port $PORT is in use by a process this script did not start"
        fi
        if port_open "$CONTROLLER_PORT"; then
            die "controller port $CONTROLLER_PORT is in use by a process this script did not start"
        fi
        if [[ -n "$SASL_SSL_PORT" ]] && port_open "$SASL_SSL_PORT"; then
            die "SASL_SSL port $SASL_SSL_PORT is in use by a process this script did not start"
        fi
        with_lock "$INSTALL_DIR.lock" install_unlocked
        command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Kafka 4.x needs Java 17+)"
        render_config
        format_storage
        printf '%s\n' "$KAFKA_VERSION" >"$RUN_DIR/version"
        # Keep the previous run's log for post-mortems; a fresh log per start.
        local f
        for f in "$LOG_FILE" "$STDOUT_FILE"; do
            if [[ -f "$f" ]]; then mv -f "$f" "$f.prev"; fi
        done
        rm -f "$LOG_FILE".[0-9]*
        local -a java_cmd=(
            "$JAVA" "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
            -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
            -Djava.awt.headless=true
            "-Dlog4j2.configurationFile=$TEMPLATE_DIR/log4j2.xml"
            "-Dpygoka.kafka.log.file=$LOG_FILE"
            "-Dkafka.logs.dir=$RUN_DIR"
        )
        if [[ -n "${PYGOKA_KAFKA_JAVA_OPTS:-}" ]]; then
            local -a extra
            read -r -a extra <<<"$PYGOKA_KAFKA_JAVA_OPTS"
            java_cmd+=("${extra[@]}")
        fi
        java_cmd+=(-cp "$(classpath)" kafka.Kafka "$PROPS_FILE")
        # setsid: own session, so the broker survives the calling shell and
        # its process group; the inner bash writes its pid, then execs java
        # (same pid), which is robust whether or not setsid has to fork.
        # 9>&-: the broker must not inherit (and so hold) the start/stop lock.
        (
            cd "$RUN_DIR"
            # shellcheck disable=SC2016 # $$, $0 and $@ are the inner bash's
            nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" "${java_cmd[@]}" \
                >"$STDOUT_FILE" 2>&1 </dev/null 9>&- &
        )
        local i
        for ((i = 0; i < 50; i++)); do
            [[ -s "$PID_FILE" ]] && break
            sleep 0.1
        done
        pid=$(broker_pid) || {
            print_log_tail
            die "the broker did not start"
        }
        log "started pid $pid (Kafka $KAFKA_VERSION, $HOST:$PORT, controller $CONTROLLER_PORT, run dir $RUN_DIR)"
    fi

    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! broker_pid >/dev/null; then
            print_log_tail
            rm -f "$PID_FILE"
            die "the broker exited during startup"
        fi
        if broker_ready; then
            log "ready at $HOST:$PORT after $(elapsed_since "$t0") s (pid $pid, RSS $(rss_of "$pid"))"
            return 0
        fi
        sleep 0.25
    done
    print_log_tail
    log "not ready after ${START_TIMEOUT} s: stopping it"
    stop_unlocked || true
    die "the broker did not become ready within ${START_TIMEOUT} s"
}

cmd_start() {
    with_lock "$RUN_ROOT/kafka.lock" start_unlocked
}

# ------------------------------------------------------------------- stop --

stop_unlocked() {
    local pid
    if ! pid=$(broker_pid); then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    local t0
    t0=$(date +%s.%N)
    log "stopping pid $pid (SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still running after ${STOP_TIMEOUT} s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
    log "stopped in $(elapsed_since "$t0") s"
}

cmd_stop() {
    with_lock "$RUN_ROOT/kafka.lock" stop_unlocked
}

cmd_restart_keep_data() {
    cmd_stop
    PYGOKA_KAFKA_KEEP_DATA=1 cmd_start
}

# ----------------------------------------------------------------- status --

cmd_status() {
    local pid
    if pid=$(broker_pid); then
        local state=starting port cport
        port=$(running_port)
        cport=$(sed -n 's|^controller\.quorum\.voters=1@[^:]*:\([0-9]*\)$|\1|p' "$PROPS_FILE" | head -n 1)
        if port_open "$port"; then state=running; fi
        printf 'kafka: %s\n' "$state"
        printf 'version: %s\n' "$(cat "$RUN_DIR/version" 2>/dev/null || echo '?')"
        printf 'bootstrap: %s:%s\n' "$HOST" "$port"
        printf 'controller: %s:%s\n' "$HOST" "$cport"
        printf 'pid: %s\n' "$pid"
        printf 'rss: %s\n' "$(rss_of "$pid")"
        printf 'cluster_id: %s\n' "$(cat "$CLUSTER_ID_FILE" 2>/dev/null || echo '?')"
        printf 'data: %s (%s)\n' "$DATA_DIR" "$(du -sh "$DATA_DIR" 2>/dev/null | cut -f1)"
        printf 'log: %s\n' "$LOG_FILE"
        return 0
    fi
    printf 'kafka: stopped\n'
    printf 'version: %s (%s)\n' "$KAFKA_VERSION" \
        "$([[ -f "$INSTALL_MARKER" ]] && echo "installed in $INSTALL_DIR" || echo "not installed")"
    printf 'bootstrap: %s:%s\n' "$HOST" "$PORT"
    return 3
}

cmd_logs() {
    local n="${1:-100}"
    [[ -f "$LOG_FILE" ]] || die "no log at $LOG_FILE"
    tail -n "$n" "$LOG_FILE"
}

usage() {
    sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

main() {
    local cmd="${1:-}"
    if [[ $# -gt 0 ]]; then shift; fi
    case "$cmd" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart-keep-data) cmd_restart_keep_data ;;
    logs) cmd_logs "$@" ;;
    bootstrap) printf '%s:%s\n' "$HOST" "$PORT" ;;
    client-config) printf '%s\n' "$RUN_DIR/sasl-ssl/client" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
