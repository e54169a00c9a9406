#!/usr/bin/env bash
# The browser tests (tests/browser) drive the system's Chromium through Playwright; Playwright
# never downloads a browser here. Install Chromium from the distribution when it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || [ -n "${PORCHLIGHT_CHROMIUM:-}" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing: install it with your package manager (or set PORCHLIGHT_CHROMIUM to its path)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
