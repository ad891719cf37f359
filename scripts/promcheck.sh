#!/usr/bin/env bash
# Build (once, cached by version) and run promcheck: Prometheus's own rule-file and PromQL parsers
# (scripts/promcheck/main.go, github.com/prometheus/prometheus from the Go module proxy), used by the tests
# to check the chart's PrometheusRule and Grafana dashboard.
#
#   scripts/promcheck.sh path        build if needed, print the binary's path
#   scripts/promcheck.sh ARGS...     build if needed, run promcheck ARGS (rules FILE... | exprs < lines)
#
# Environment: PYGOKA_CACHE (default ~/.cache/pygoka), GO (default: go from PATH).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODULE="$SCRIPT_DIR/promcheck"
CACHE_DIR="${PYGOKA_CACHE:-$HOME/.cache/pygoka}"
GO="${GO:-go}"
VERSION="$(awk '$1 == "require" && $2 == "github.com/prometheus/prometheus" {print $3; exit} $1 == "github.com/prometheus/prometheus" {print $2; exit}' "$MODULE/go.mod")"
[[ -n "$VERSION" ]] || { echo "promcheck.sh: no prometheus version in $MODULE/go.mod" >&2; exit 1; }
# The source is part of the cache key: a changed main.go is rebuilt.
SOURCE_SUM="$(cat "$MODULE/main.go" "$MODULE/go.mod" | sha256sum | cut -c1-12)"
BIN_DIR="$CACHE_DIR/promcheck-$VERSION-$SOURCE_SUM"
BIN="$BIN_DIR/promcheck"

build() {
    [[ -x "$BIN" ]] && return 0
    command -v "$GO" >/dev/null || { echo "promcheck.sh: go not found" >&2; exit 1; }
    echo "promcheck.sh: building promcheck with prometheus $VERSION..." >&2
    (cd "$MODULE" && env GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 GOMAXPROCS=2 nice -n 15 \
        "$GO" build -trimpath -ldflags "-s -w" -o "$BIN.tmp" .)
    mv -f "$BIN.tmp" "$BIN"
}

mkdir -p "$BIN_DIR"
(
    flock 9
    build
) 9>"$BIN_DIR/.build.lock"

if [[ "${1:-}" == path ]]; then
    printf '%s\n' "$BIN"
else
    exec "$BIN" "$@"
fi
