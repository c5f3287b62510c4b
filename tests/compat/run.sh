#!/usr/bin/env bash
# Runs the driftd compatibility suite: the published driftdb npm client
# against a live driftd process.
#
#   DRIFTD_BIN=build/driftd COMPAT_WORK_DIR=/tmp/compat-work bash tests/compat/run.sh [node --test flags]
#
# Dependencies (exact versions pinned in package.json) are installed into
# COMPAT_WORK_DIR, never into the source tree, and only when missing or stale.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

: "${DRIFTD_BIN:?set DRIFTD_BIN to the built driftd binary}"
: "${COMPAT_WORK_DIR:?set COMPAT_WORK_DIR to a scratch directory}"

if [[ ! -x "$DRIFTD_BIN" ]]; then
  echo "run.sh: DRIFTD_BIN=$DRIFTD_BIN is not an executable file" >&2
  exit 1
fi
for tool in node npm openssl; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 1; }
done

DRIFTD_BIN="$(readlink -f "$DRIFTD_BIN")"
export DRIFTD_BIN
mkdir -p "$COMPAT_WORK_DIR"
work="$(cd "$COMPAT_WORK_DIR" && pwd)"

# Install when node_modules is missing or was installed from another package.json.
# (A package-lock.json next to package.json is used with `npm ci` if present;
# the repository does not keep one, package.json pins exact versions.)
stamp_file="$work/node_modules/.driftd-compat-stamp"
manifests=("$here/package.json")
[[ -f "$here/package-lock.json" ]] && manifests+=("$here/package-lock.json")
want_stamp="$(cat "${manifests[@]}" | sha256sum | cut -d' ' -f1)"
have_stamp=""
[[ -f "$stamp_file" ]] && have_stamp="$(cat "$stamp_file")"
if [[ ! -d "$work/node_modules/driftdb" || "$have_stamp" != "$want_stamp" ]]; then
  rm -f "$work/package-lock.json"
  cp "${manifests[@]}" "$work/"
  echo "run.sh: installing client packages into $work/node_modules"
  if [[ -f "$work/package-lock.json" ]]; then
    (cd "$work" && npm ci --no-audit --no-fund)
  else
    (cd "$work" && npm install --no-audit --no-fund --no-package-lock)
  fi
  echo "$want_stamp" >"$stamp_file"
fi

# A fresh test certificate authority for the TLS tests, made now and never kept in the
# repository. Node trusts it through NODE_EXTRA_CA_CERTS, read once at its start, so it
# must exist before the test processes do; lib/pki.js issues server certificates under it.
pki="$work/pki"
rm -rf "$pki"
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=driftd compat test CA" -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
export DRIFTD_TEST_PKI="$pki"
export NODE_EXTRA_CA_CERTS="$pki/ca.pem"

export NODE_PATH="$work/node_modules"
cd "$work"
shopt -s nullglob
tests=("$here"/test/*.test.js)
if (( ${#tests[@]} == 0 )); then
  echo "run.sh: no test files in $here/test" >&2
  exit 1
fi
echo "run.sh: driftd=$DRIFTD_BIN node=$(node --version) files=${#tests[@]}"
exec node --test --test-reporter=spec "$@" "${tests[@]}"
