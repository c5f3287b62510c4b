#!/usr/bin/env bash
# Starts a local 3-node cluster (config/cluster-{a,b,c}.json: clients on 127.0.0.1:8081-8083,
# peers on 127.0.0.1:7001-7003) and stops it on Ctrl-C. Extra arguments go to every node.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${DRIFTD_BIN:-build/driftd}
[ -x "$bin" ] || { echo "no $bin: run make build first" >&2; exit 1; }

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

for node in a b c; do
  # Process substitution keeps $! the node's own pid (a pipe would give sed's).
  "$bin" --config "config/cluster-$node.json" "$@" > >(sed -u "s/^/[$node] /") 2>&1 &
  pids+=($!)
done
echo "cluster up: http://127.0.0.1:8081, :8082, :8083 (Ctrl-C stops every node)"
wait
