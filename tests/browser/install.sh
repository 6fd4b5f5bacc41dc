#!/usr/bin/env bash
# Installs what the storefront browser test needs, only when it is missing:
#   - Debian's chromium (at /usr/bin/chromium, or wherever $CHROMIUM points);
#   - playwright-core from npm, in tests/browser/node_modules.
# It never downloads a browser through playwright (no `npx playwright install`):
# the test drives the system Chromium.
set -euo pipefail
cd "$(dirname "$0")"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "install.sh: chromium present at $CHROMIUM"
else
    echo "install.sh: chromium missing at $CHROMIUM; installing Debian's chromium with apt-get"
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: installing chromium needs root (apt-get); run as root or set CHROMIUM" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium
fi

if [ -d node_modules/playwright-core ]; then
    echo "install.sh: playwright-core present in $(pwd)/node_modules"
else
    # Keep playwright from fetching a browser of its own in any case.
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    if [ -f package-lock.json ]; then
        echo "install.sh: installing playwright-core with npm ci"
        npm ci --no-audit --no-fund
    else
        echo "install.sh: installing playwright-core with npm install"
        npm install --no-audit --no-fund
    fi
fi

echo "install.sh: done"
