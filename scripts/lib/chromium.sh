#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (tests/browser) if it is missing.
# Playwright drives it at /usr/bin/chromium; it never downloads a browser of its own.
# Usage: source scripts/lib/chromium.sh && ensure_chromium   (or run this file directly)

ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        sudo="sudo"
    fi
    echo "installing chromium (Debian package) for the browser tests" >&2
    $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
    [ -x /usr/bin/chromium ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    ensure_chromium
fi
