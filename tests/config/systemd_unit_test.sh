#!/usr/bin/env bash
# config/driftd.service is a unit systemd accepts, with the habits README promises: a state
# directory for --data-dir, LimitNOFILE, a sandbox, SIGTERM for stop. Exit 77 (skipped)
# where systemd-analyze is not installed.
#   DRIFTD_BIN=build/driftd bash tests/config/systemd_unit_test.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
unit="$here/../../config/driftd.service"
: "${DRIFTD_BIN:?set DRIFTD_BIN to the built driftd binary}"

for want in '^StateDirectory=driftd$' '^LimitNOFILE=' '^KillSignal=SIGTERM$' \
    '^ProtectSystem=strict$' '^NoNewPrivileges=yes$' '^ExecStart=/usr/local/bin/driftd .*--data-dir /var/lib/driftd/'; do
  grep -Eq "$want" "$unit" || { echo "driftd.service: no line matching $want" >&2; exit 1; }
done

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is not installed: the unit's syntax is not checked"
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The unit names the installed binary; check it against the built one.
sed "s|/usr/local/bin/driftd|$(readlink -f "$DRIFTD_BIN")|g" "$unit" >"$work/driftd.service"
out="$(systemd-analyze verify "$work/driftd.service" 2>&1)" || { echo "$out" >&2; exit 1; }
if [[ -n "$out" ]]; then
  echo "systemd-analyze verify reported:" >&2
  echo "$out" >&2
  exit 1
fi
echo "driftd.service: verified"
