#!/usr/bin/env bash
# System packages the test suite uses beyond Python: a headless Chromium for the
# web console test (scripts/ensure-browser.sh) and PostgreSQL's server binaries
# for the PostgreSQL store tests (a throw-away cluster is started by the tests).
# Installs what is missing when it may (root + apt); otherwise says what to do.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/ensure-browser.sh"
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing postgresql (Debian package) for the PostgreSQL store tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
else
  echo "PostgreSQL's server binaries are missing: the store tests will run on SQLite only." >&2
  echo "Install them (Debian/Ubuntu: sudo apt-get install postgresql) to test the PostgreSQL store too." >&2
fi
