#!/usr/bin/env bash
# Runs one command of a sanitized build (DRIFTD_SANITIZE or DRIFTD_TSAN) so that any
# sanitizer report fails it: every process it starts (the driftd nodes of the multinode
# tests too, which inherit the environment) writes its reports to a fresh directory, and
# the command fails when a report is there, whatever its own exit status was. A node killed
# with SIGKILL writes no leak report; one that exits does.
#
#   tests/sanitizers/run.sh build-asan/tests/protocol_test --gtest_filter='ParseJson.*'
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
reports="$(mktemp -d "${TMPDIR:-/tmp}/driftd-sanitizer-XXXXXX")"
trap 'rm -rf "$reports"' EXIT

# log_path is shared by all sanitizers of a process: one prefix, suffixed with the pid.
log="log_path=$reports/report"
export ASAN_OPTIONS="$log:detect_leaks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="$log:suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="$log:halt_on_error=1:print_stacktrace=1:suppressions=$here/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Every race is worth seeing in one run: TSan goes on after a report (and exits with 66).
export TSAN_OPTIONS="$log:halt_on_error=0:second_deadlock_stack=1:suppressions=$here/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

"$@"
status=$?

shopt -s nullglob
found=("$reports"/report.*)
if [ ${#found[@]} -ne 0 ]; then
  for f in "${found[@]}"; do
    echo "==== sanitizer report ${f##*/} (pid) ====" >&2
    cat "$f" >&2
  done
  echo "sanitizers: ${#found[@]} process(es) reported; failing $(basename "$1")" >&2
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
