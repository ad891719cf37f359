#!/usr/bin/env bash
# Build, start and stop a real one-node Kubernetes cluster without Docker: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, and a node (containerd + runc + CNI bridge, kubelet, kube-proxy)
# in a network namespace of its own, with CoreDNS and local-path-provisioner. The binaries are built from
# the Go module proxy and cached by version; containerd, runc and the CNI plugins are Debian's.
# See docs/local-kubernetes.md.
#
#   scripts/k8s.sh install   build the binaries (cached), install the Debian packages
#   scripts/k8s.sh start     install if needed, make certs + kubeconfigs, start everything, wait for /readyz,
#                            the default service account, a Ready node and cluster DNS
#   scripts/k8s.sh stop      SIGTERM (SIGKILL after PYGOKA_K8S_STOP_TIMEOUT s), then remove the pods,
#                            mounts, network namespace, interfaces and cgroups; fine if not running
#   scripts/k8s.sh host-service NAMESPACE NAME PORT [HOST_PORT]
#                            a selector-less Service NAME:PORT whose endpoint is HOST_PORT (default PORT) on
#                            this machine's address on the pod network (how pods reach the local Kafka)
#   scripts/k8s.sh restart-apiserver [SECONDS]
#                            stop kube-apiserver only, stay down SECONDS (default 0), start it again on the same
#                            etcd data and certificates, wait for /readyz (clients' tokens stay valid)
#   scripts/k8s.sh status    pids, RSS, ports (exit 3 if the API server is not running)
#   scripts/k8s.sh env       print export lines (KUBECONFIG, PATH with the cached binaries,
#                            PYGOKA_K8S_HOST_IP, CONTAINER_RUNTIME_ENDPOINT for crictl, CONTAINERD_ADDRESS for ctr)
#   scripts/k8s.sh logs [N]  last N (default 50) lines of each process log
#
# Environment:
#   PYGOKA_CACHE             cache dir (default ~/.cache/pygoka); binaries in k8s-<version>/bin
#   PYGOKA_RUN               run dir (default <repo>/.run); control plane files in <run>/k8s
#   PYGOKA_K8S_API_PORT      kube-apiserver secure port (default 6443)
#   PYGOKA_ETCD_PORT         etcd client port (default 2379)
#   PYGOKA_ETCD_PEER_PORT    etcd peer port (default 2380)
#   PYGOKA_K8S_NODE=0        control plane only, on 127.0.0.1: no node, no pod ever runs (default 1)
#   PYGOKA_K8S_KEEP_DATA=1   start on the existing etcd data and certificates (default: fresh)
#   PYGOKA_K8S_START_TIMEOUT seconds to wait for readiness (default 120)
#   PYGOKA_K8S_STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (default 15)
#   PYGOKA_GO_BUILD_P        go build -p (default 2; 1 lowers peak memory)
#   PYGOKA_HELM_VERSION      helm v3 version (default v3.22.0)
#   GO                       go binary (default: from PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
KUBE_MODULE="$SCRIPT_DIR/k8s/kube"
ETCD_MODULE="$SCRIPT_DIR/k8s/etcd"

# The versions are the ones pinned in the wrapper modules' go.mod files.
module_version() {
    awk -v mod="$2" '$1 == "require" && $2 == mod {print substr($3, 2); exit} $1 == mod {print substr($2, 2); exit}' "$1"
}
K8S_VERSION="$(module_version "$KUBE_MODULE/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(module_version "$ETCD_MODULE/go.mod" go.etcd.io/etcd/server/v3)"
HELM_VERSION="${PYGOKA_HELM_VERSION:-v3.22.0}"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" ]] || { echo "k8s.sh: cannot read versions from scripts/k8s/*/go.mod" >&2; exit 1; }

CACHE_DIR="${PYGOKA_CACHE:-$HOME/.cache/pygoka}"
RUN_ROOT="${PYGOKA_RUN:-$REPO_DIR/.run}"
[[ "$CACHE_DIR" == /* ]] || CACHE_DIR="$PWD/$CACHE_DIR"
[[ "$RUN_ROOT" == /* ]] || RUN_ROOT="$PWD/$RUN_ROOT"
BIN_DIR="$CACHE_DIR/k8s-$K8S_VERSION/bin"

RUN_DIR="$RUN_ROOT/k8s"
PKI_DIR="$RUN_DIR/pki"
ETCD_DATA="$RUN_DIR/etcd-data"
KUBECONFIG_FILE="$RUN_DIR/kubeconfig"
KCM_KUBECONFIG="$RUN_DIR/kube-controller-manager.kubeconfig"

API_PORT="${PYGOKA_K8S_API_PORT:-6443}"
ETCD_PORT="${PYGOKA_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${PYGOKA_ETCD_PEER_PORT:-2380}"
START_TIMEOUT="${PYGOKA_K8S_START_TIMEOUT:-120}"
STOP_TIMEOUT="${PYGOKA_K8S_STOP_TIMEOUT:-15}"
GO="${GO:-go}"

NODE_ENABLED="${PYGOKA_K8S_NODE:-1}"
[[ "$NODE_ENABLED" == 0 || "$NODE_ENABLED" == 1 ]] || { echo "k8s.sh: PYGOKA_K8S_NODE must be 0 or 1, not '$NODE_ENABLED'" >&2; exit 2; }
CONTROL_PLANE=(kube-controller-manager kube-apiserver etcd)
NODE_PROCESSES=(local-path-provisioner coredns kube-proxy kubelet containerd kube-scheduler)
# Watched while waiting for readiness, dependants first.
PROCESSES=("${CONTROL_PLANE[@]}")
[[ "$NODE_ENABLED" == 1 ]] && PROCESSES=("${NODE_PROCESSES[@]}" "${CONTROL_PLANE[@]}")

source "$SCRIPT_DIR/k8s/node.sh"
# The API server listens on 127.0.0.1, or with a node on the host's address on the pod network.
API_HOST=127.0.0.1
if NODE_INDEX=$(node_index) && [[ -n "$NODE_INDEX" ]]; then
    node_vars "$NODE_INDEX"
    API_HOST="$HOST_IP"
fi

log() { printf 'k8s.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

with_lock() {
    local lock_file="$1"
    shift
    mkdir -p "$(dirname "$lock_file")"
    (
        flock 9
        "$@"
    ) 9>"$lock_file"
}

now() { date +%s.%N; }
elapsed_since() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.1f", e - s}'; }

# ---------------------------------------------------------------- install

# Builds are heavy on a small shared machine: low priority, bounded parallelism,
# one binary at a time; Go's module and build caches stay in their default
# places so a later version bump rebuilds incrementally.
go_build_env() {
    env GOMAXPROCS="${GOMAXPROCS:-2}" GOFLAGS="${GOFLAGS:-} -buildvcs=false -p=${PYGOKA_GO_BUILD_P:-2}" GOTOOLCHAIN=local \
        CGO_ENABLED=0 nice -n 15 "$@"
}

version_ldflags() {
    local major="${K8S_VERSION%%.*}" rest="${K8S_VERSION#*.}" minor
    minor="${rest%%.*}"
    local flags="-s -w" pkg
    # kubectl reports client-go's version, the servers component-base's.
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean"
    done
    printf '%s' "$flags"
}

# binary_current NAME VERSION: the cached binary exists and was built for VERSION.
binary_current() {
    [[ -x "$BIN_DIR/$1" ]] && [[ "$(cat "$BIN_DIR/.$1.version" 2>/dev/null)" == "$2" ]]
}

finish_binary() {
    local name="$1" version="$2" tmp="$3" started="$4"
    mv -f "$tmp" "$BIN_DIR/$name"
    printf '%s\n' "$version" >"$BIN_DIR/.$name.version"
    log "built $name $version in $(elapsed_since "$started") s"
}

build_kube_binary() {
    local name="$1"
    binary_current "$name" "$K8S_VERSION" && return 0
    local started tmp="$BIN_DIR/.$name.tmp"
    started=$(now)
    log "building $name v$K8S_VERSION (minutes when cold)..."
    (cd "$KUBE_MODULE" && go_build_env "$GO" build -trimpath -ldflags "$(version_ldflags)" -o "$tmp" \
        "k8s.io/kubernetes/cmd/$name")
    finish_binary "$name" "$K8S_VERSION" "$tmp" "$started"
}

build_etcd() {
    binary_current etcd "$ETCD_VERSION" && return 0
    local started tmp="$BIN_DIR/.etcd.tmp"
    started=$(now)
    log "building etcd v$ETCD_VERSION..."
    (cd "$ETCD_MODULE" && go_build_env "$GO" build -trimpath -ldflags "-s -w" -o "$tmp" .)
    finish_binary etcd "$ETCD_VERSION" "$tmp" "$started"
}

build_helm() {
    binary_current helm "$HELM_VERSION" && return 0
    local started gobin="$BIN_DIR/.helm-gobin"
    started=$(now)
    log "building helm $HELM_VERSION..."
    rm -rf "$gobin"
    # helm's go.mod has no replace directives, so `go install pkg@version` works
    # outside any module (GOFLAGS=-mod=mod would be rejected there).
    (cd / && go_build_env env GOBIN="$gobin" "$GO" install -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
    finish_binary helm "$HELM_VERSION" "$gobin/helm" "$started"
    rm -rf "$gobin"
}

install_unlocked() {
    mkdir -p "$BIN_DIR"
    command -v "$GO" >/dev/null || die "go not found (Go >= 1.25 needed)"
    build_etcd
    build_kube_binary kube-apiserver
    build_kube_binary kube-controller-manager
    build_kube_binary kubectl
    build_helm
    [[ "$NODE_ENABLED" == 0 ]] || install_node
}

cmd_install() {
    with_lock "$CACHE_DIR/k8s-$K8S_VERSION/.install.lock" install_unlocked
    [[ "${1:-}" == quiet ]] || log "binaries in $BIN_DIR: Kubernetes v$K8S_VERSION, etcd v$ETCD_VERSION, helm $HELM_VERSION$(
        [[ "$NODE_ENABLED" == 0 ]] || printf ', crictl %s, CoreDNS %s, local-path-provisioner %s' \
            "$CRICTL_VERSION" "$COREDNS_VERSION" "$LOCAL_PATH_VERSION")"
}

# ---------------------------------------------------------------- processes

pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
# exe_of NAME: the executable of process NAME (Debian's containerd, the rest built here).
exe_of() { if [[ "$1" == containerd ]]; then printf /usr/bin/containerd; else printf '%s/%s' "$BIN_DIR" "$1"; fi; }
log_file() { printf '%s/%s.log' "$RUN_DIR" "$1"; }

# process_pid NAME: the pid of our NAME process, if it is alive (the pid file
# alone could name a recycled pid: check the executable too).
process_pid() {
    local file pid exe
    file=$(pid_file "$1")
    [[ -f "$file" ]] || return 1
    pid=$(cat "$file" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ "$exe" == "$(exe_of "$1")" || "$exe" == "$(exe_of "$1") (deleted)" ]] || return 1
    # A zombie is gone for every purpose here.
    [[ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ]] || return 1
    printf '%s' "$pid"
}

rss_of() { awk '/^VmRSS:/ {printf "%d MB", $2 / 1024}' "/proc/$1/status" 2>/dev/null || true; }

launch() {
    local name="$1"
    shift
    # setsid: the processes outlive this script and a Ctrl-C in the caller's
    # terminal; stop is the only way down. 9>&-: they must not inherit the
    # flock of with_lock, or every later start/stop would wait for them.
    setsid "$(exe_of "$name")" "$@" >"$(log_file "$name")" 2>&1 </dev/null 9>&- &
    printf '%s\n' "$!" >"$(pid_file "$name")"
}

kubectl_admin() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" --request-timeout=5s "$@"; }

# ---------------------------------------------------------------- certificates

# gen_cert NAME SUBJECT EXT: EC P-256 key + certificate signed by the run's CA.
gen_cert() {
    local name="$1" subject="$2" ext="$3"
    openssl ecparam -genkey -name prime256v1 -noout -out "$PKI_DIR/$name.key" 2>/dev/null
    openssl req -new -key "$PKI_DIR/$name.key" -subj "$subject" -out "$PKI_DIR/$name.csr" 2>/dev/null
    printf '%b' "$ext" >"$PKI_DIR/$name.ext"
    openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
        -CAcreateserial -days 3650 -sha256 -extfile "$PKI_DIR/$name.ext" -out "$PKI_DIR/$name.crt" 2>/dev/null
    rm -f "$PKI_DIR/$name.csr" "$PKI_DIR/$name.ext"
}

make_pki() {
    rm -rf "$PKI_DIR"
    mkdir -p "$PKI_DIR"
    chmod 700 "$PKI_DIR"
    openssl ecparam -genkey -name prime256v1 -noout -out "$PKI_DIR/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI_DIR/ca.key" -subj "/CN=pygoka-local-k8s-ca" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -out "$PKI_DIR/ca.crt" 2>/dev/null
    local client="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
    gen_cert apiserver "/CN=kube-apiserver" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:$API_HOST,IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    gen_cert admin "/O=system:masters/CN=pygoka-admin" "$client"
    gen_cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"
    # The API server's identity towards kubelets (logs, exec, port-forward).
    gen_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
    [[ "$NODE_ENABLED" == 0 ]] || node_certs
    # Service-account token signing key pair.
    openssl ecparam -genkey -name prime256v1 -noout -out "$PKI_DIR/sa.key" 2>/dev/null
    openssl ec -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE CERT_NAME USER
write_kubeconfig() {
    local file="$1" cert="$2" user="$3" k=("$BIN_DIR/kubectl" --kubeconfig "$1")
    rm -f "$file"
    "${k[@]}" config set-cluster local --server "https://$API_HOST:$API_PORT" \
        --certificate-authority "$PKI_DIR/ca.crt" --embed-certs=true >/dev/null
    "${k[@]}" config set-credentials "$user" --client-certificate "$PKI_DIR/$cert.crt" \
        --client-key "$PKI_DIR/$cert.key" --embed-certs=true >/dev/null
    "${k[@]}" config set-context local --cluster local --user "$user" >/dev/null
    "${k[@]}" config use-context local >/dev/null
    chmod 600 "$file"
}

# ---------------------------------------------------------------- start / stop

start_etcd() {
    launch etcd --name pygoka --data-dir "$ETCD_DATA" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "pygoka=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync --log-level warn
}

start_apiserver() {
    launch kube-apiserver --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --secure-port "$API_PORT" --bind-address "$API_HOST" --advertise-address "$API_HOST" \
        --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
        --client-ca-file "$PKI_DIR/ca.crt" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key" \
        --service-cluster-ip-range 10.0.0.0/24 --authorization-mode Node,RBAC --allow-privileged=true \
        --kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
        --kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority "$PKI_DIR/ca.crt" --kubelet-preferred-address-types InternalIP \
        --profiling=false --v=1
}

start_controller_manager() {
    # --secure-port=0: no health endpoint, so no third fixed port to collide on.
    launch kube-controller-manager --kubeconfig "$KCM_KUBECONFIG" \
        --service-account-private-key-file "$PKI_DIR/sa.key" --root-ca-file "$PKI_DIR/ca.crt" \
        --cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
        --leader-elect=false --controllers='*' --use-service-account-credentials=true \
        --secure-port=0 --profiling=false --v=1
}

print_logs() {
    local n="${1:-50}" name file
    for name in etcd kube-apiserver kube-controller-manager "${NODE_PROCESSES[@]}"; do
        file=$(log_file "$name")
        [[ -f "$file" ]] || continue
        printf -- '----- %s (last %s lines) -----\n' "$file" "$n" >&2
        tail -n "$n" "$file" >&2
    done
}

# wait_for DESCRIPTION COMMAND...: poll until COMMAND succeeds; fail (with logs)
# when a process died or the timeout passed.
wait_for() {
    local what="$1" deadline name
    shift
    deadline=$(($(date +%s) + START_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        for name in "${PROCESSES[@]}"; do
            if [[ -f "$(pid_file "$name")" ]] && ! process_pid "$name" >/dev/null; then
                print_logs 30
                die "$name exited while waiting for $what (log: $(log_file "$name"))"
            fi
        done
        if (($(date +%s) > deadline)); then
            print_logs 30
            die "timed out after ${START_TIMEOUT}s waiting for $what"
        fi
        sleep 0.2
    done
}

etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
api_ready() { [[ "$(kubectl_admin get --raw /readyz 2>/dev/null)" == ok ]]; }

start_unlocked() {
    if pid=$(process_pid kube-apiserver); then
        log "already running (kube-apiserver pid $pid, port $API_PORT)"
        return 0
    fi
    stop_unlocked quiet
    cmd_install quiet
    local started
    started=$(now)
    mkdir -p "$RUN_DIR"
    # A failed start leaves nothing running behind it.
    trap 'stop_unlocked quiet' EXIT
    if [[ "$NODE_ENABLED" == 1 ]]; then
        claim_node_index
        node_vars "$(node_index)"
        API_HOST="$HOST_IP"
        save_sysctls
        setup_node_network
    fi
    if [[ "${PYGOKA_K8S_KEEP_DATA:-0}" != 1 || ! -f "$PKI_DIR/ca.crt" ]]; then
        rm -rf "$ETCD_DATA"
        make_pki
    fi
    write_kubeconfig "$KUBECONFIG_FILE" admin pygoka-admin
    write_kubeconfig "$KCM_KUBECONFIG" kube-controller-manager system:kube-controller-manager

    start_etcd
    wait_for "etcd on 127.0.0.1:$ETCD_PORT" etcd_healthy
    start_apiserver
    wait_for "kube-apiserver /readyz on $API_HOST:$API_PORT" api_ready
    start_controller_manager
    # The service account controller in kube-controller-manager creates it;
    # pods cannot be created before it exists.
    wait_for "the default service account" kubectl_admin get serviceaccount default -n default
    if [[ "$NODE_ENABLED" == 1 ]]; then
        node_kubeconfigs
        start_node
        log "cluster v$K8S_VERSION up in $(elapsed_since "$started") s: API https://$API_HOST:$API_PORT, node $NODE_NAME Ready ($NODE_IP, pods $POD_CIDR, DNS $HOST_IP)"
    else
        log "control plane v$K8S_VERSION up in $(elapsed_since "$started") s: API https://$API_HOST:$API_PORT"
    fi
    trap - EXIT
    log "KUBECONFIG=$KUBECONFIG_FILE"
}

# regex_quote TEXT: TEXT as an extended regular expression matching itself (for pgrep -f).
regex_quote() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }

# run_pids NAME: pids of our NAME processes whose command line names this run dir, found even when the pid
# file is gone or stale (a control plane must never outlive its stop).
run_pids() {
    local name="$1" marker proc exe
    case "$name" in
        etcd) marker="$ETCD_DATA" ;;
        kube-apiserver) marker="$PKI_DIR/apiserver.crt" ;;
        kube-controller-manager) marker="$KCM_KUBECONFIG" ;;
        kube-scheduler | kubelet | coredns | local-path) marker="$RUN_DIR/$name.kubeconfig" ;;
        local-path-provisioner) marker="$RUN_DIR/local-path.kubeconfig" ;;
        kube-proxy) marker="$NODE_DIR/kube-proxy.yaml" ;;
        containerd) marker="$NODE_DIR/containerd.toml" ;;
        *) return 0 ;;
    esac
    # pgrep narrows the search to command lines naming the marker; the executable confirms each.
    for proc in $(pgrep -f -- "$(regex_quote "$marker")" || true); do
        exe=$(readlink "/proc/$proc/exe" 2>/dev/null) || continue
        [[ "$exe" == "$(exe_of "$name")" || "$exe" == "$(exe_of "$name") (deleted)" ]] || continue
        if [[ " $(tr '\0' ' ' <"/proc/$proc/cmdline" 2>/dev/null) " == *" $marker "* ]]; then
            printf '%s\n' "$proc"
        fi
    done
}

# alive PID: the process exists and is not a zombie (this machine's PID 1 may be slow to reap the daemons).
alive() { kill -0 "$1" 2>/dev/null && [[ "$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" != Z ]]; }

# stop_process NAME: SIGTERM, SIGKILL after STOP_TIMEOUT, remove the pid file.
stop_process() {
    local name="$1" pid waited=0 pids
    pids=$( { process_pid "$name" && echo; run_pids "$name"; } | sort -u | tr '\n' ' ' || true)
    for pid in $pids; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        while alive "$pid" && ((waited < STOP_TIMEOUT * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if alive "$pid"; then
            log "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        [[ "${2:-}" == quiet ]] || log "stopped $name (pid $pid)"
    done
    rm -f "$(pid_file "$name")"
}

stop_unlocked() {
    local name
    [[ -f "$RUN_DIR/node-index" ]] && stop_node "${1:-}"
    for name in "${CONTROL_PLANE[@]}"; do
        stop_process "$name" "${1:-}"
    done
    [[ -f "$RUN_DIR/node-index" ]] && clean_node
    return 0
}

restart_apiserver_unlocked() {
    local down="${1:-0}" started
    [[ "$down" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "restart-apiserver: SECONDS must be a number, not '$down'"
    process_pid etcd >/dev/null || die "restart-apiserver: the control plane is not running (scripts/k8s.sh start)"
    started=$(now)
    stop_process kube-apiserver
    sleep "$down"
    start_apiserver
    wait_for "kube-apiserver /readyz on $API_HOST:$API_PORT" api_ready
    log "kube-apiserver restarted in $(elapsed_since "$started") s (down ${down} s): API https://$API_HOST:$API_PORT"
}

cmd_status() {
    local name pid rc=0
    printf 'kubernetes v%s, etcd v%s, helm %s; binaries in %s\n' "$K8S_VERSION" "$ETCD_VERSION" "$HELM_VERSION" "$BIN_DIR"
    for name in etcd kube-apiserver kube-controller-manager "${NODE_PROCESSES[@]}"; do
        if pid=$(process_pid "$name"); then
            printf '%-24s running  pid %-8s RSS %s\n' "$name" "$pid" "$(rss_of "$pid")"
        else
            printf '%-24s stopped\n' "$name"
            [[ "$name" == kube-apiserver ]] && rc=3
        fi
    done
    printf 'API https://%s:%s, etcd http://127.0.0.1:%s\n' "$API_HOST" "$API_PORT" "$ETCD_PORT"
    [[ -z "${NODE_INDEX:-}" ]] || printf 'node %s: netns %s, node IP %s, pods %s, DNS %s\n' \
        "$NODE_NAME" "$NETNS" "$NODE_IP" "$POD_CIDR" "$HOST_IP"
    cmd_env
    return "$rc"
}

cmd_env() {
    printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
    printf 'export PATH=%q:"$PATH"\n' "$BIN_DIR"
    [[ -n "${NODE_INDEX:-}" ]] || return 0
    printf 'export PYGOKA_K8S_HOST_IP=%q\n' "$HOST_IP"
    printf 'export CONTAINER_RUNTIME_ENDPOINT=%q\n' "unix://$CONTAINERD_SOCK"
    printf 'export CONTAINERD_ADDRESS=%q CONTAINERD_NAMESPACE=k8s.io\n' "$CONTAINERD_SOCK"
}

cmd_host_service() {
    local namespace="${1:-}" name="${2:-}" port="${3:-}" host_port="${4:-${3:-}}"
    [[ -n "$namespace" && -n "$name" && "$port" =~ ^[0-9]+$ && "$host_port" =~ ^[0-9]+$ ]] ||
        die "usage: k8s.sh host-service NAMESPACE NAME PORT [HOST_PORT]"
    [[ -n "${NODE_INDEX:-}" ]] || die "host-service: no node is running from $RUN_DIR (scripts/k8s.sh start)"
    kubectl_admin apply -n "$namespace" -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: $name}
spec:
  ports: [{port: $port, targetPort: $host_port, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name-host
  labels: {kubernetes.io/service-name: $name, endpointslice.kubernetes.io/managed-by: pygoka-k8s-sh}
addressType: IPv4
endpoints: [{addresses: [$HOST_IP], conditions: {ready: true}}]
ports: [{port: $host_port, protocol: TCP}]
EOF
    log "service $namespace/$name:$port -> $HOST_IP:$host_port"
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        install) cmd_install ;;
        start) with_lock "$RUN_DIR.lock" start_unlocked ;;
        stop) with_lock "$RUN_DIR.lock" stop_unlocked ;;
        restart-apiserver) with_lock "$RUN_DIR.lock" restart_apiserver_unlocked "$@" ;;
        status) cmd_status ;;
        env) cmd_env ;;
        host-service) cmd_host_service "$@" ;;
        logs) print_logs "${1:-50}" 2>&1 ;;
        *)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
            exit 2
            ;;
    esac
}

main "$@"
