#!/usr/bin/env bash
# Build the project's container images without Docker (buildah) and load them into a node's containerd.
# See docs/local-kubernetes.md.
#
#   scripts/images.sh build [IMAGE...]     build what is missing or whose inputs changed (default: all)
#   scripts/images.sh load [IMAGE...]      build if needed, then import into the containerd of the cluster
#                                          started from PYGOKA_RUN (default: all but the system images)
#   scripts/images.sh load-system SOCKET   pause + base into the containerd at SOCKET (k8s.sh start does it)
#   scripts/images.sh ref IMAGE            print the image's reference
#   scripts/images.sh list                 each image with its reference and whether it is built
#
# Images: base (a Python 3.11 Debian bookworm built with debootstrap: no Docker Hub), pause (the pod sandbox),
# runtime and operator (docker/*.Dockerfile, under the chart's default names), click-count
# (examples/k8s/Dockerfile). CLICK_COUNT_TAG=2 builds click-count:2, the same code under a new tag.
#
# Environment:
#   PYGOKA_CACHE        cache dir (default ~/.cache/pygoka); buildah's store in images/
#   PYGOKA_RUN          run dir of the cluster to load into (default <repo>/.run)
#   DEBIAN_MIRROR       debootstrap's mirror (default: the first one apt uses)
#   BUILDER=docker      build with `docker build` instead (where Docker exists), on BASE_IMAGE (default
#                       python:3.11-slim) rather than the Debian base; load is then the cluster's job (kind load)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
CACHE_DIR="${PYGOKA_CACHE:-$HOME/.cache/pygoka}"
[[ "$CACHE_DIR" == /* ]] || CACHE_DIR="$PWD/$CACHE_DIR"
STORE="$CACHE_DIR/images"
BUILDER="${BUILDER:-buildah}"
VERSION="$(awk -F'"' '/^version *=/ {print $2; exit}' "$REPO_DIR/pyproject.toml")"
CLICK_COUNT_TAG="${CLICK_COUNT_TAG:-1}"

declare -A REFS=(
    [base]=localhost/pygoka-python:3.11-bookworm
    [pause]=localhost/pause:local
    [runtime]="ghcr.io/pygoka/pygoka-runtime:$VERSION"
    [operator]="ghcr.io/pygoka/pygoka-operator:$VERSION"
    [click-count]="localhost/click-count:$CLICK_COUNT_TAG"
)
# With Docker the Dockerfiles' own default base is used (or BASE_IMAGE), pulled by docker build.
[[ "$BUILDER" == docker ]] && REFS[base]="${BASE_IMAGE:-python:3.11-slim}"
APP_IMAGES=(runtime operator click-count)
SYSTEM_IMAGES=(pause base)

log() { printf 'images.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
ref() { [[ -n "${REFS[$1]:-}" ]] || die "unknown image '$1' (one of: ${!REFS[*]})"; printf '%s' "${REFS[$1]}"; }

bah() {
    BUILDAH_ISOLATION=chroot nice -n 10 buildah --root "$STORE/storage" --runroot "$STORE/run" \
        --storage-driver overlay "$@"
}

# inputs_of IMAGE: a digest of everything the image is built from, kept as the image's label.
inputs_of() {
    local files=()
    case "$1" in
        base) files=(/etc/ssl/certs/ca-certificates.crt) ;;
        pause) files=("$(pause_binary)") ;;
        runtime | operator)
            files=("$REPO_DIR/docker/$1.Dockerfile" "$REPO_DIR/pyproject.toml" "$REPO_DIR/README.md" "$REPO_DIR/.dockerignore")
            mapfile -t -O ${#files[@]} files < <(find "$REPO_DIR/runtime/pygoka" "$REPO_DIR/operator/pygoka_operator" \
                -name '*.py' -o -name '*.html' -o -name '*.js' -o -name '*.json' -o -name '*.yaml' -o -name 'py.typed' | sort) ;;
        click-count) files=("$REPO_DIR/examples/k8s/Dockerfile" "$REPO_DIR/examples/k8s/click_count.py") ;;
    esac
    {
        printf '%s\n' "$1" "$(ref "$1")"
        [[ "$1" == base ]] && declare -f build_base
        [[ "$1" == click-count ]] && label_of runtime
        [[ "$1" == runtime || "$1" == operator || "$1" == click-count ]] && label_of base
        # Paths relative to the checkout: another clone of the same sources has the same images.
        sha256sum "${files[@]}" | sed "s|  $REPO_DIR/|  |"
    } | sha256sum | cut -c1-16
}

label_of() { bah inspect --type image --format '{{index .OCIv1.Config.Labels "io.pygoka.inputs"}}' "$(ref "$1")" 2>/dev/null || true; }
current() {
    local label
    label=$(label_of "$1")
    [[ -n "$label" && "$label" == "$(inputs_of "$1")" ]]
}

# pause_binary: built by `k8s.sh install` next to the Kubernetes binaries.
pause_binary() { (eval "$("$SCRIPT_DIR/k8s.sh" env | grep '^export PATH=')" && command -v pause) || true; }

debian_mirror() {
    [[ -n "${DEBIAN_MIRROR:-}" ]] && { printf '%s' "$DEBIAN_MIRROR"; return; }
    local mirror
    mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [[ -n "$mirror" ]] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    printf '%s' "${mirror:-http://deb.debian.org/debian}"
}

build_base() {
    local root="$STORE/base-rootfs" container
    command -v debootstrap >/dev/null || die "debootstrap missing: scripts/k8s.sh install installs it"
    rm -rf "$root"
    log "debootstrap bookworm from $(debian_mirror) (about a minute)..."
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$(debian_mirror)" \
        >"$STORE/debootstrap.log" 2>&1 || { tail -20 "$STORE/debootstrap.log" >&2; die "debootstrap failed"; }
    # /usr/local as a venv: `pip install --prefix=/install` + `COPY /install /usr/local` then land on sys.path
    # exactly as in python:3.11-slim, where Debian's own scheme would write /install/local/...
    chroot "$root" python3 -m venv /usr/local
    # The certificate authorities this machine trusts (pip reaches PyPI through them during builds).
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    container=$(bah from scratch)
    bah copy "$container" "$root/" / >/dev/null
    bah config --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
        --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --cmd '["python3"]' \
        --label "io.pygoka.inputs=$(inputs_of base)" "$container"
    bah commit -q "$container" "$(ref base)" >/dev/null
    bah rm "$container" >/dev/null
    rm -rf "$root"
}

build_pause() {
    local container bin
    bin=$(pause_binary)
    [[ -x "$bin" ]] || die "the pause binary is not built: scripts/k8s.sh install"
    container=$(bah from scratch)
    bah copy "$container" "$bin" /pause >/dev/null
    bah config --entrypoint '["/pause"]' --label "io.pygoka.inputs=$(inputs_of pause)" "$container"
    bah commit -q "$container" "$(ref pause)" >/dev/null
    bah rm "$container" >/dev/null
}

# build_dockerfile IMAGE DOCKERFILE CONTEXT BASE_IMAGE: a Dockerfile as written, its FROM given as BASE.
build_dockerfile() {
    local image="$1" dockerfile="$2" context="$3" base="$4"
    if [[ "$BUILDER" == docker ]]; then
        docker build -f "$dockerfile" --build-arg "BASE=$base" -t "$(ref "$image")" "$context"
        return
    fi
    bah bud --quiet --network host --pull-never --layers=false -f "$dockerfile" --build-arg "BASE=$base" \
        --build-arg "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
        --label "io.pygoka.inputs=$(inputs_of "$image")" -t "$(ref "$image")" "$context" >/dev/null
}

build_one() {
    local image="$1" started
    if [[ "$BUILDER" != docker ]] && current "$image"; then
        return 0
    fi
    [[ "$BUILDER" == docker && ( "$image" == base || "$image" == pause ) ]] && return 0
    started=$(date +%s)
    log "building $image ($(ref "$image"))..."
    case "$image" in
        base) build_base ;;
        pause) build_pause ;;
        runtime | operator)
            build_one base
            build_dockerfile "$image" "$REPO_DIR/docker/$image.Dockerfile" "$REPO_DIR" "$(ref base)" ;;
        click-count)
            build_one runtime
            build_dockerfile click-count "$REPO_DIR/examples/k8s/Dockerfile" "$REPO_DIR/examples/k8s" "$(ref runtime)" ;;
        *) die "unknown image '$image'" ;;
    esac
    log "built $(ref "$image") in $(($(date +%s) - started)) s"
}

# archive IMAGE: a docker-archive of the built image, kept per input digest so a load never re-exports it.
archive() {
    local file
    file="$STORE/archives/$1-$(label_of "$1").tar"
    if [[ ! -f "$file" ]]; then
        mkdir -p "$STORE/archives"
        rm -f "$STORE/archives/$1-"*.tar
        bah push -q "$(ref "$1")" "docker-archive:$file.tmp:$(ref "$1")" >/dev/null
        mv "$file.tmp" "$file"
    fi
    printf '%s' "$file"
}

import_into() {
    local socket="$1" image
    shift
    for image in "$@"; do
        build_one "$image"
        ctr --address "$socket" -n k8s.io images import "$(archive "$image")" >/dev/null ||
            die "importing $(ref "$image") into containerd at $socket failed"
    done
}

cluster_socket() {
    local line
    line=$("$SCRIPT_DIR/k8s.sh" env | grep '^export CONTAINERD_ADDRESS=' || true)
    [[ -n "$line" ]] || die "no node is running from ${PYGOKA_RUN:-$REPO_DIR/.run} (scripts/k8s.sh start)"
    line=${line#export CONTAINERD_ADDRESS=}
    eval "printf '%s' ${line%% *}"
}

main() {
    local cmd="${1:-}" image
    [[ $# -gt 0 ]] && shift
    mkdir -p "$STORE"
    case "$cmd" in
        build)
            (($# > 0)) || set -- "${SYSTEM_IMAGES[@]}" "${APP_IMAGES[@]}"
            for image in "$@"; do build_one "$image"; done ;;
        load)
            (($# > 0)) || set -- "${APP_IMAGES[@]}"
            import_into "$(cluster_socket)" "$@"
            log "loaded into the node: $(for image in "$@"; do printf '%s ' "$(ref "$image")"; done)" ;;
        load-system)
            [[ -S "${1:-}" ]] || die "load-system: '${1:-}' is not containerd's socket"
            import_into "$1" "${SYSTEM_IMAGES[@]}" ;;
        ref) ref "${1:-}"; echo ;;
        list)
            for image in "${SYSTEM_IMAGES[@]}" "${APP_IMAGES[@]}"; do
                printf '%-12s %-45s %s\n' "$image" "$(ref "$image")" "$(current "$image" && echo built || echo "not built")"
            done ;;
        *)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
            exit 2 ;;
    esac
}

main "$@"
