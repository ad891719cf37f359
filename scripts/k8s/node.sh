# Sourced by scripts/k8s.sh: the real node (containerd + runc + CNI bridge, kubelet, kube-proxy) plus the
# cluster add-ons that run as host processes (kube-scheduler, CoreDNS, local-path-provisioner).
#
# Network: node i (a small number claimed under /run/pygoka-nodes, so clusters of several run dirs coexist)
# lives in the network namespace pygoka-node-<i>, joined to this machine by a veth pair: host side
# pygoka-h<i> = 10.89.<i>.1 (the API server, CoreDNS and the Kafka pod listener bind there), node side
# 10.89.<i>.2 (the kubelet's node IP). Pods get 10.<200+i>.x.y on the bridge inside the node namespace, which
# has no default route: no pod packet can leave this machine. Only the mount namespace is shared, so the
# kubelet's volume mounts are seen by containerd; stop unmounts them.

NODE_NAME=pygoka-node
CLAIMS_DIR=/run/pygoka-nodes
CRICTL_VERSION=v1.37.0
COREDNS_VERSION=v1.14.7
LOCAL_PATH_VERSION=v0.0.37
NODE_DIR="$RUN_DIR/node"
# The image of local-path-provisioner's helper pods (any image with /bin/sh): the project's Python base.
BASE_IMAGE="$("$SCRIPT_DIR/images.sh" ref base)"

# Everything with a unix socket lives under a short directory: socket paths are limited to 107 bytes, and
# the kubelet's (root dir + pod uid + plugin names) exceed that under a pytest tmp_path.
node_index() { cat "$RUN_DIR/node-index" 2>/dev/null; }
node_vars() {
    local i="$1"
    NODE_INDEX="$i"
    NETNS="pygoka-node-$i"
    HOST_IF="pygoka-h$i"
    HOST_IP="10.89.$i.1"
    NODE_IP="10.89.$i.2"
    POD_CIDR="10.$((200 + i)).0.0/16"
    SHORT_DIR="$CLAIMS_DIR/$i.d"
    CONTAINERD_SOCK="$SHORT_DIR/containerd.sock"
    KUBELET_ROOT="$SHORT_DIR/kubelet"
    CGROUP_ROOT="/pygoka-node-$i"
}

# claim_node_index: the lowest free index; a claim whose run dir no longer names it (the run dir was deleted, e.g.
# by pytest's rotation of its temp dirs, or its cluster was killed before stop) is reclaimed.
claim_node_index() {
    mkdir -p "$CLAIMS_DIR"
    local i owner
    for i in $(seq 0 49); do
        if ! mkdir "$CLAIMS_DIR/$i" 2>/dev/null; then
            owner=$(cat "$CLAIMS_DIR/$i/owner" 2>/dev/null || true)
            [[ -n "$owner" && "$(cat "$owner/node-index" 2>/dev/null)" != "$i" ]] || continue
            log "node index $i: stale claim of $owner, stopping what it left"
            reclaim_node "$i" "$owner"
            mkdir "$CLAIMS_DIR/$i"
        fi
        printf '%s\n' "$RUN_DIR" >"$CLAIMS_DIR/$i/owner"
        printf '%s\n' "$i" >"$RUN_DIR/node-index"
        return 0
    done
    die "no free node index under $CLAIMS_DIR (50 clusters running?)"
}

in_node() { nsenter --net="/run/netns/$NETNS" -- "$@"; }

# ---------------------------------------------------------------- install

build_go_tool() {
    local name="$1" package="$2" version="$3" started gobin="$BIN_DIR/.$1-gobin"
    binary_current "$name" "$version" && return 0
    started=$(now)
    log "building $name $version..."
    rm -rf "$gobin"
    (cd / && go_build_env env GOBIN="$gobin" "$GO" install -trimpath -ldflags "-s -w" "$package@$version")
    finish_binary "$name" "$version" "$gobin/$(basename "${package%%@*}")" "$started"
    rm -rf "$gobin"
}

build_pause() {
    local version
    version=$(sha256sum "$SCRIPT_DIR/k8s/pause/main.go" | cut -c1-12)
    binary_current pause "$version" && return 0
    (cd "$SCRIPT_DIR/k8s/pause" && go_build_env "$GO" build -trimpath -ldflags "-s -w" -o "$BIN_DIR/.pause.tmp" .)
    finish_binary pause "$version" "$BIN_DIR/.pause.tmp" "$(now)"
}

# Debian's containerd, runc, CNI plugins, buildah (images) and debootstrap (the base image).
NODE_PACKAGES=(containerd runc containernetworking-plugins buildah debootstrap conntrack iptables iproute2 util-linux)
install_node_packages() {
    local missing=() pkg
    for pkg in "${NODE_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
}

install_node() {
    install_node_packages
    build_kube_binary kubelet
    build_kube_binary kube-scheduler
    build_kube_binary kube-proxy
    build_go_tool crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION"
    build_go_tool coredns github.com/coredns/coredns "$COREDNS_VERSION"
    build_go_tool local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION"
    build_pause
}

# ---------------------------------------------------------------- network

setup_node_network() {
    teardown_node_network
    ip netns add "$NETNS"
    ip link add "$HOST_IF" type veth peer name eth0 netns "$NETNS"
    ip addr add "$HOST_IP/24" dev "$HOST_IF"
    ip link set "$HOST_IF" up
    in_node ip link set lo up
    in_node ip addr add "$NODE_IP/24" dev eth0
    in_node ip link set eth0 up
    ip route add "$POD_CIDR" via "$NODE_IP" dev "$HOST_IF"
    in_node sysctl -qw net.ipv4.ip_forward=1
    # Service traffic between two pods on the bridge must pass kube-proxy's iptables rules.
    in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

teardown_node_network() {
    ip link del "$HOST_IF" 2>/dev/null || true
    [[ -e "/run/netns/$NETNS" ]] && ip netns del "$NETNS" 2>/dev/null || true
    return 0
}

# ---------------------------------------------------------------- configuration

write_node_config() {
    mkdir -p "$NODE_DIR"/{containerd,cni/net.d,cni/ipam,pod-logs,volumes} "$SHORT_DIR"
    cat >"$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$SHORT_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$SHORT_DIR/containerd.ttrpc.sock"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:local"
  # The sandbox lacks CAP_SYS_RESOURCE here: lowering oom_score_adj fails every pod sandbox.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$SHORT_DIR/runc"
        SystemdCgroup = false
EOF
    cat >"$NODE_DIR/cni/net.d/10-pygoka.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "pygoka", "plugins": [
  {"type": "bridge", "bridge": "pygoka0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$NODE_DIR/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
    printf 'nameserver %s\n' "$HOST_IP" >"$NODE_DIR/resolv.conf"
    cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# Images built here cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
podLogsDir: $NODE_DIR/pod-logs
resolvConf: $NODE_DIR/resolv.conf
clusterDomain: cluster.local
clusterDNS: [$HOST_IP]
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
tlsCertFile: $PKI_DIR/kubelet.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
serializeImagePulls: false
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
EOF
    cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $RUN_DIR/kube-proxy.kubeconfig}
# Leaves the conntrack table's size and timeouts alone.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
EOF
    cat >"$NODE_DIR/Corefile" <<EOF
.:53 {
    bind $HOST_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $RUN_DIR/coredns.kubeconfig local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 10
}
EOF
    cat >"$NODE_DIR/local-path.json" <<EOF
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$NODE_DIR/volumes"]}]}
EOF
}

# The sysctls the kubelet sets machine-wide (kernel.*, vm.*), restored by stop.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
    kernel.keys.root_maxbytes)
save_sysctls() {
    local file="$CLAIMS_DIR/sysctls" name
    [[ -f "$file" ]] && return 0
    for name in "${KUBELET_SYSCTLS[@]}"; do
        printf '%s=%s\n' "$name" "$(sysctl -n "$name")"
    done >"$file"
}
restore_sysctls() {
    local file="$CLAIMS_DIR/sysctls" line
    [[ -f "$file" ]] || return 0
    # Other clusters still running keep the kubelet's values.
    compgen -G "$CLAIMS_DIR/[0-9]*/owner" >/dev/null && return 0
    while IFS= read -r line; do sysctl -qw "$line" || true; done <"$file"
    rm -f "$file"
}

# ---------------------------------------------------------------- start

node_certs() {
    local client="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
    gen_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
    gen_cert kubelet "/CN=$NODE_NAME" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:$NODE_IP,DNS:$NODE_NAME\n"
    gen_cert kube-scheduler "/CN=system:kube-scheduler" "$client"
    gen_cert kube-proxy "/CN=system:kube-proxy" "$client"
    gen_cert coredns "/CN=pygoka-coredns" "$client"
    gen_cert local-path "/CN=pygoka-local-path-provisioner" "$client"
}

node_kubeconfigs() {
    write_kubeconfig "$RUN_DIR/kubelet.kubeconfig" kubelet-client "system:node:$NODE_NAME"
    write_kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" kube-scheduler system:kube-scheduler
    write_kubeconfig "$RUN_DIR/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
    write_kubeconfig "$RUN_DIR/coredns.kubeconfig" coredns pygoka-coredns
    write_kubeconfig "$RUN_DIR/local-path.kubeconfig" local-path pygoka-local-path-provisioner
}

# RBAC of the add-ons that have no bootstrap role, the local-path StorageClass and its helper pods' namespace.
apply_addons() {
    kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pygoka:coredns}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: pygoka:coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pygoka:coredns}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: pygoka-coredns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: pygoka:local-path-provisioner}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: pygoka-local-path-provisioner}]
---
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: '$(tr -d '\n' <"$NODE_DIR/local-path.json")'
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      priorityClassName: system-node-critical
      tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
      containers:
      - name: helper-pod
        image: $BASE_IMAGE
        imagePullPolicy: Never
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
}

containerd_ready() { "$BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" version; }
node_ready() {
    [[ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
# dns_ready: CoreDNS answers an A record for the kubernetes Service.
dns_ready() {
    python3 - "$HOST_IP" <<'PY'
import socket, struct, sys
query = struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"".join(
    bytes([len(p)]) + p.encode() for p in "kubernetes.default.svc.cluster.local".split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(query, (sys.argv[1], 53))
answer = s.recv(512)
sys.exit(0 if struct.unpack(">H", answer[6:8])[0] > 0 else 1)
PY
}

# launch_in_node NAME ARGS...: like launch, inside the node's network namespace.
launch_in_node() {
    local name="$1"
    shift
    setsid nsenter --net="/run/netns/$NETNS" -- "$(exe_of "$name")" "$@" >"$(log_file "$name")" 2>&1 </dev/null 9>&- &
    printf '%s\n' "$!" >"$(pid_file "$name")"
}

# The kubelet's cgroupRoot, in each cgroup v1 hierarchy (it creates kubepods below it, but not the root).
make_cgroups() {
    local hierarchy
    for hierarchy in /sys/fs/cgroup/*/; do
        [[ "$hierarchy" == /sys/fs/cgroup/unified/ ]] && continue
        mkdir -p "$hierarchy${CGROUP_ROOT#/}"
    done
    # A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
    local cpuset=/sys/fs/cgroup/cpuset
    if [[ -f "$cpuset/cpuset.cpus" ]]; then
        cat "$cpuset/cpuset.cpus" >"$cpuset$CGROUP_ROOT/cpuset.cpus"
        cat "$cpuset/cpuset.mems" >"$cpuset$CGROUP_ROOT/cpuset.mems"
    fi
}

start_node() {
    write_node_config
    make_cgroups
    launch_in_node containerd --config "$NODE_DIR/containerd.toml"
    wait_for "containerd on $CONTAINERD_SOCK" containerd_ready
    "$SCRIPT_DIR/images.sh" load-system "$CONTAINERD_SOCK"
    launch kube-scheduler --kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" \
        --leader-elect=false --secure-port=0 --v=1
    launch_in_node kubelet --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$RUN_DIR/kubelet.kubeconfig" \
        --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$KUBELET_ROOT" \
        --cert-dir "$PKI_DIR/kubelet-certs" --v=1
    launch_in_node kube-proxy --config "$NODE_DIR/kube-proxy.yaml" --v=1
    launch coredns -conf "$NODE_DIR/Corefile"
    apply_addons
    # In the node's namespace: its health server listens on :8080 of whatever network it runs in.
    launch_in_node local-path-provisioner --debug start --kubeconfig "$RUN_DIR/local-path.kubeconfig" \
        --namespace local-path-storage --config "$NODE_DIR/local-path.json" \
        --configmap-name local-path-config --service-account-name default \
        --provisioner-name rancher.io/local-path --helper-image "$BASE_IMAGE"
    wait_for "node $NODE_NAME Ready" node_ready
    wait_for "cluster DNS on $HOST_IP:53" dns_ready
}

# ---------------------------------------------------------------- stop

# unmount_under DIR: every mount point below DIR, deepest first (the kubelet's volumes, containerd's rootfs).
unmount_under() {
    local dir="$1" target
    [[ -n "$dir" ]] || return 0
    awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r target; do
        umount -l "$target" 2>/dev/null || true
    done
}

# Cgroups the kubelet made below cgroupRoot in each v1 hierarchy, deepest first.
remove_cgroups() {
    local hierarchy
    for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
        [[ -d "$hierarchy${CGROUP_ROOT#/}" ]] || continue
        find "$hierarchy${CGROUP_ROOT#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

# shim_pids: containerd-shim processes of this node (their -address names its socket).
shim_pids() {
    local proc
    for proc in $(pgrep -f -- "-address $CONTAINERD_SOCK" || true); do
        [[ "$(readlink "/proc/$proc/exe" 2>/dev/null)" == */containerd-shim* ]] && printf '%s\n' "$proc"
    done
}

# stop_node: the node's processes and pods; clean_node (after the control plane stopped: the API server talks to
# itself on the node's gateway address until then) removes what they leave.
stop_node() {
    local i
    i=$(node_index) || return 0
    [[ -n "$i" ]] || return 0
    node_vars "$i"
    stop_process local-path-provisioner "${1:-}"
    stop_process coredns "${1:-}"
    stop_process kube-proxy "${1:-}"
    stop_process kubelet "${1:-}"
    if process_pid containerd >/dev/null; then remove_pods; fi
    stop_process containerd "${1:-}"
    stop_process kube-scheduler "${1:-}"
    kill_shims
}

# remove_pods: every pod's containers stopped and its network torn down, while containerd can still do it.
remove_pods() {
    timeout 60 "$BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 20s rmp -fa >/dev/null 2>&1 || true
}

# kill_shims: the node's containerd shims and their children (the containers), which no stop reaches otherwise.
kill_shims() {
    local pid
    for pid in $(shim_pids); do
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    done
}

clean_node() {
    local i
    i=$(node_index) || return 0
    [[ -n "$i" ]] || return 0
    node_vars "$i"
    remove_node_leftovers "$NODE_DIR"
    rm -f "$RUN_DIR/node-index"
    restore_sysctls
}

# remove_node_leftovers NODE_DIR: node $NODE_INDEX's mounts, network, cgroups and claim, once its processes are gone.
remove_node_leftovers() {
    unmount_under "$KUBELET_ROOT"
    unmount_under "$SHORT_DIR"
    unmount_under "$1"
    teardown_node_network
    remove_cgroups
    rm -rf "$SHORT_DIR" "$CLAIMS_DIR/$NODE_INDEX"
}

# reclaim_node I OWNER: stops and removes what the cluster of run dir OWNER left of node I. Its processes may
# still run: the kubelet goes first, so that it does not start again the pods removed while containerd answers.
reclaim_node() {
    local owner="$2"
    node_vars "$1"
    kill_processes_of "$owner" kubelet
    if [[ -S "$CONTAINERD_SOCK" ]]; then remove_pods; fi
    kill_processes_of "$owner" "${NODE_PROCESSES[@]}" "${CONTROL_PLANE[@]}"
    kill_shims
    remove_node_leftovers "$owner/node"
}

# kill_processes_of RUN_DIR NAME...: SIGKILL to the processes named NAME (by executable) whose command line names
# RUN_DIR, as each of a cluster's processes does (configs, kubeconfigs, data dirs).
kill_processes_of() {
    local run_dir="$1" proc exe
    shift
    for proc in $(pgrep -f -- "$(regex_quote "$run_dir/")" || true); do
        exe=$(readlink "/proc/$proc/exe" 2>/dev/null) || continue
        if [[ " $* " == *" $(basename "${exe% (deleted)}") "* ]]; then
            kill -KILL "$proc" 2>/dev/null || true
        fi
    done
}
