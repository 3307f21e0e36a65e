#!/usr/bin/env bash
# Installs what the explorer's browser test (explorer/browser_test.go)
# needs: Debian's chromium (never a browser download) and a pinned
# playwright-core in explorer/browsertest/node_modules. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d explorer/browsertest/node_modules/playwright-core ]; then
  echo "== npm ci (playwright-core, no browser download)"
  (cd explorer/browsertest && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
