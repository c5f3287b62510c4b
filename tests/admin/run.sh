#!/usr/bin/env bash
# Runs the admin page's browser test: headless Chromium (Debian `chromium`) driven by
# puppeteer-core against a live 3-node driftd cluster.
#
#   DRIFTD_BIN=build/driftd ADMIN_WORK_DIR=/tmp/admin-work ADMIN_SCREENSHOT=build/admin-page.png \
#     bash tests/admin/run.sh [node --test flags]
#
# puppeteer-core (pinned in package.json) is installed into ADMIN_WORK_DIR, never into the
# source tree, and only when missing or stale; it downloads no browser. CHROMIUM names the
# browser when it is not `chromium` on the PATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

: "${DRIFTD_BIN:?set DRIFTD_BIN to the built driftd binary}"
: "${ADMIN_WORK_DIR:?set ADMIN_WORK_DIR to a scratch directory}"

if [[ ! -x "$DRIFTD_BIN" ]]; then
  echo "run.sh: DRIFTD_BIN=$DRIFTD_BIN is not an executable file" >&2
  exit 1
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 1; }
done
CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
if [[ -z "$CHROMIUM" || ! -x "$CHROMIUM" ]]; then
  echo "run.sh: chromium not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
export CHROMIUM

DRIFTD_BIN="$(readlink -f "$DRIFTD_BIN")"
export DRIFTD_BIN
mkdir -p "$ADMIN_WORK_DIR"
work="$(cd "$ADMIN_WORK_DIR" && pwd)"
ADMIN_SCREENSHOT="$(readlink -f "${ADMIN_SCREENSHOT:-$work/admin-page.png}")"
export ADMIN_SCREENSHOT

stamp_file="$work/node_modules/.driftd-admin-stamp"
want_stamp="$(sha256sum <"$here/package.json" | cut -d' ' -f1)"
have_stamp=""
[[ -f "$stamp_file" ]] && have_stamp="$(cat "$stamp_file")"
if [[ ! -d "$work/node_modules/puppeteer-core" || "$have_stamp" != "$want_stamp" ]]; then
  cp "$here/package.json" "$work/"
  echo "run.sh: installing puppeteer-core into $work/node_modules"
  (cd "$work" && PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund --no-package-lock)
  echo "$want_stamp" >"$stamp_file"
fi

export NODE_PATH="$work/node_modules"
cd "$work"
echo "run.sh: driftd=$DRIFTD_BIN node=$(node --version) chromium=$CHROMIUM"
exec node --test --test-reporter=spec "$@" "$here"/test/*.test.js
