#!/usr/bin/env bash
# Install Debian's chromium for the dashboard's browser test (tests/test_dashboard_browser.py).
# Idempotent: returns at once when /usr/bin/chromium is there. Needs root (or sudo) and apt-get.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: no apt-get here; install chromium so that /usr/bin/chromium exists" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_browser.sh: run as root (or with sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi
echo "install_browser.sh: installing chromium (apt-get; a few minutes the first time)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
test -x /usr/bin/chromium
echo "install_browser.sh: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)" >&2
