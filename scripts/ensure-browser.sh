#!/usr/bin/env bash
# The web console test drives a real headless Chromium (Debian's package).
# Install it when it is missing and we may (root); otherwise say what to do.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian package) for the web console test..."
  apt-get update -qq
  # fonts-wqy-microhei: Chinese plates and site names render in screenshots.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
else
  echo "chromium is not installed: the web console test will fail." >&2
  echo "Install it (Debian/Ubuntu: sudo apt-get install chromium) or set HAULWATCH_CHROMIUM=/path/to/chrome." >&2
fi
