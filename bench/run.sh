#!/usr/bin/env bash
# Runs one benchmark scenario against fresh driftd processes and prints the median of
# repeated runs. The server is pinned to CPU 0, the load generator to CPU 1 (taskset).
#
#   bench/run.sh SCENARIO [RUNS]        (RUNS defaults to 5)
#
# Scenarios (see BENCHMARKS.md for what each measures):
#   fanout        one room, 1000 subscribers, one writer; RATE pushes/s (default 1500)
#   rooms         1000 rooms x 10 subscribers, one writer each; RATE pushes/s per room (150)
#   ordered       one room, 4 writers, 10 subscribers; RATE pushes/s per writer (50000)
#   latency       one room, 100 subscribers, one writer at 1000 pushes/s: 100k deliveries/s
#   broadcast     one room, 10000 subscribers, one writer at 5 pushes/s: time to reach all
#   idle          10000 idle subscribed connections: server memory per connection
#   cluster       fanout with subscribers spread over a local 3-node cluster
#   cluster-latency   latency with subscribers spread over a local 3-node cluster
#   cluster-ordered   ordered over a local 3-node cluster: one room, three replicas, writers
#                 and subscribers spread over the nodes (ACTION=append, STORAGE=disk to
#                 compare with a single durable node)
#   send-floor    no driftd: one plain send() to each of 10000 sockets, the floor under broadcast
#   cold-start    a node on a data folder of ROOMS (100000) stored rooms: time to start, and
#                 the first get of a room not in memory (cold) and the second (warm)
#
# Durable rooms: STORAGE=disk runs the nodes on a fresh data folder each run (FSYNC: always,
# interval or never; default always), and ACTION=append makes the writers append instead of
# relay. STORAGE=both runs every repetition twice, memory first, then disk, and reports the
# medians of each: the two are measured in the same run, side by side.
#
# TLS=1 serves the client port over TLS (a throwaway self-signed certificate made with
# openssl for each invocation) and has the generator connect with wss:// (single-node
# scenarios). TLS=both runs every repetition plain, then over TLS, and reports the medians
# of each, side by side, like STORAGE=both.
#
# Environment: RATE, DURATION (s, default 10), SUBSCRIBERS, ROOMS, WRITERS, CONNECTIONS,
# SERVER_CPUS (default 0), CLIENT_CPUS (default 1), SERVER_ARGS (extra driftd flags),
# BENCH_ARGS (extra driftbench flags, e.g. --write-each), BUILD_DIR (default build),
# SERVER_WRAP (a command put before the server, e.g. "chrt -b 0").
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-}
runs=${2:-5}
[ -n "$scenario" ] || { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

build=${BUILD_DIR:-build}
server_cpus=${SERVER_CPUS:-0}
client_cpus=${CLIENT_CPUS:-1}
duration=${DURATION:-10}
server_bin=$build/driftd
bench_bin=$build/driftbench
if [ ! -x "$server_bin" ] || [ ! -x "$bench_bin" ] || [ ! -x "$build/send_floor" ] ||
   [ ! -x "$build/cold_start" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target driftd driftbench send_floor cold_start -j 2 >/dev/null
fi

free_port() {
  # A random port below the ephemeral range that nothing answers on.
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

pids=()
logdir=$(mktemp -d /tmp/driftd-bench.XXXXXX)
case "${TLS:-0}" in
  both) transports=(plain tls) ;;
  1|tls) transports=(tls) ;;
  *) transports=(plain) ;;
esac
if [ "${transports[-1]}" = tls ]; then
  case "$scenario" in
    cluster*|send-floor|cold-start) echo "TLS is measured on single-node scenarios only" >&2; exit 2 ;;
  esac
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=driftd-bench -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$logdir/tls.key" -out "$logdir/tls.pem" 2>/dev/null
fi
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_healthy() {
  local port=$1
  for _ in $(seq 1 200); do
    curl -sfk "$(scheme)://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "driftd on port $port did not come up; see $logdir" >&2
  return 1
}

scheme() { [ "${run_transport:-plain}" = tls ] && echo https || echo http; }

# The client-port flags of this repetition.
transport_args() {
  [ "${run_transport:-plain}" = tls ] && echo "--tls-cert $logdir/tls.pem --tls-key $logdir/tls.key"
  return 0
}

# The storage of the nodes of this repetition: memory, or disk on a fresh folder.
storage_args() {
  local port=$1
  if [ "${run_storage:-memory}" = disk ]; then
    echo "--storage disk --data-dir $logdir/data-$port-$RANDOM --fsync ${FSYNC:-always} --max-room-bytes 4g"
  else
    echo "--storage memory --max-room-bytes 4g"
  fi
}

# Starts one node; echoes its HTTP port.
start_node() {
  local port=$1; shift
  ${SERVER_WRAP:-} taskset -c "$server_cpus" "$server_bin" --port "$port" --io-threads 1 --actor-threads 1 \
    --log-level warn --max-connections 200000 $(storage_args "$port") $(transport_args) ${SERVER_ARGS:-} "$@" \
    >"$logdir/node-$port.log" 2>&1 &
  pids+=($!)
  wait_healthy "$port"
}

start_cluster() {
  local secret="bench-$RANDOM$RANDOM"
  local h1 h2 h3 c1 c2 c3
  h1=$(free_port); h2=$(free_port); h3=$(free_port)
  c1=$(free_port); c2=$(free_port); c3=$(free_port)
  local seeds="127.0.0.1:$c1,127.0.0.1:$c2,127.0.0.1:$c3"
  start_node "$h1" --node-name a --cluster-port "$c1" --seeds "$seeds" --secret "$secret"
  start_node "$h2" --node-name b --cluster-port "$c2" --seeds "$seeds" --secret "$secret"
  start_node "$h3" --node-name c --cluster-port "$c3" --seeds "$seeds" --secret "$secret"
  for _ in $(seq 1 200); do
    [ "$(curl -s "http://127.0.0.1:$h1/cluster" | grep -o '"state":"up"' | wc -l)" = 3 ] && break
    sleep 0.05
  done
  echo "127.0.0.1:$h1,127.0.0.1:$h2,127.0.0.1:$h3"
}

# The number after the first "NAME": on each input line.
field() {
  awk -v k="\"$1\":" '{ i = index($0, k); if (i == 0) next
    s = substr($0, i + length(k)); if (match(s, /^-?[0-9.]+/)) print substr(s, 1, RLENGTH) }'
}

run_once() {
  pids=()
  local out servers port
  if [ "$scenario" = send-floor ]; then
    "$build/send_floor" --connections "${CONNECTIONS:-10000}" --server-cpu "$server_cpus" \
      --client-cpu "$client_cpus" || true
    return
  fi
  if [ "$scenario" = cold-start ]; then
    taskset -c "$client_cpus" "$build/cold_start" --driftd "$server_bin" \
      --rooms "${ROOMS:-100000}" --server-cpu "$server_cpus" 2>/dev/null || true
    return
  fi
  case "$scenario" in
    cluster|cluster-latency|cluster-ordered) servers=$(start_cluster) ;;
    *) port=$(free_port); start_node "$port"; servers="127.0.0.1:$port" ;;
  esac
  local gen=(taskset -c "$client_cpus" "$bench_bin" --server "$servers" --scenario "$scenario"
             --duration "$duration" --action "${ACTION:-relay}" ${BENCH_ARGS:-})
  [ "${run_transport:-plain}" = tls ] && gen+=(--tls)
  case "$scenario" in
    fanout|cluster)
      out=$("${gen[@]}" --subscribers "${SUBSCRIBERS:-1000}" --rate "${RATE:-1500}") || true ;;
    rooms)
      out=$("${gen[@]}" --rooms "${ROOMS:-1000}" --subscribers "${SUBSCRIBERS:-10}" \
            --rate "${RATE:-150}") || true ;;
    ordered|cluster-ordered)
      out=$("${gen[@]}" --writers "${WRITERS:-4}" --subscribers "${SUBSCRIBERS:-10}" \
            --rate "${RATE:-50000}") || true ;;
    latency|cluster-latency)
      out=$("${gen[@]}" --subscribers "${SUBSCRIBERS:-100}" --rate "${RATE:-1000}") || true ;;
    broadcast)
      out=$("${gen[@]}" --subscribers "${SUBSCRIBERS:-10000}" --rate "${RATE:-5}" \
            --per-push-max --source-ips 4) || true ;;
    idle)
      local pid=${pids[0]}
      out=$("${gen[@]}" --idle "${CONNECTIONS:-10000}" --rooms "${ROOMS:-100}" \
            --server-pid "$pid" --source-ips 4) || true ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
  if [ "${scenario#cluster}" = "$scenario" ] && [ "$scenario" != idle ]; then
    # How many WebSocket frames the node's socket writes (and, over TLS, its SSL_writes)
    # carried on average, from its own counters.
    local s mw sw tw
    s=$(curl -sk "$(scheme)://$servers/stats")
    mw=$(echo "$s" | field messages_written); sw=$(echo "$s" | field socket_writes)
    tw=$(echo "$s" | field tls_writes)
    [ -n "$mw" ] && [ -n "$sw" ] && [ "$sw" != 0 ] &&
      out="${out%\}},\"frames_per_write\":$(awk -v m="$mw" -v w="$sw" 'BEGIN { printf "%.1f", m / w }')}"
    [ -n "$mw" ] && [ -n "$tw" ] && [ "$tw" != 0 ] &&
      out="${out%\}},\"frames_per_ssl_write\":$(awk -v m="$mw" -v w="$tw" 'BEGIN { printf "%.1f", m / w }')}"
  fi
  if [ "${scenario#cluster}" != "$scenario" ]; then
    # Each node's fan-outs count the broadcasts they got: one per push per node, whatever
    # the number of its subscribers.
    local per_node="" n
    for n in ${servers//,/ }; do
      local s
      s=$(curl -s "http://$n/stats")
      per_node+="{\"node\":\"$n\",\"broadcasts_in\":$(echo "$s" | field broadcasts_in),\"deliveries\":$(echo "$s" | field deliveries)},"
    done
    out="${out%\}},\"per_node\":[${per_node%,}]}"
  fi
  cleanup
  echo "$out"
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

case "${STORAGE:-memory}" in
  both) storages=(memory disk) ;;
  disk) storages=(disk) ;;
  *) storages=(memory) ;;
esac
declare -A by_variant
variants=()
for run_storage in "${storages[@]}"; do
  for run_transport in "${transports[@]}"; do variants+=("$run_storage/$run_transport"); done
done
for i in $(seq 1 "$runs"); do
  for variant in "${variants[@]}"; do
    run_storage=${variant%/*}
    run_transport=${variant#*/}
    r=$(run_once)
    echo "run $i ($variant): $r" >&2
    by_variant[$variant]+="$r"$'\n'
  done
done

report() {
  local results=()
  mapfile -t results < <(printf '%s' "$1" | sed '/^$/d')
  printf '%s\n' "${results[@]}" >> "$logdir/results.jsonl"
  if [ "$scenario" = idle ]; then
    fields="bytes_per_connection rss_after_kib"
  elif [ "$scenario" = cold-start ]; then
    fields="start_ms cold_get_p50_ms cold_get_p99_ms warm_get_p50_ms warm_get_p99_ms"
  elif [ "$scenario" = send-floor ]; then
    fields="round_p50_ms round_max_ms send_us"
  else
    fields="deliveries_per_s pushes_per_s p50_us p99_us p999_us max_us pushes_per_write frames_per_write frames_per_ssl_write lost duplicated reordered closed"
  fi
  echo "scenario $scenario, storage ${2%/*}, ${2#*/}: median of $runs run(s) (raw: $logdir/results.jsonl)"
  for f in $fields; do
    printf '  %-20s %s\n' "$f" "$(printf '%s\n' "${results[@]}" | field "$f" | median)"
  done
  # The worst run for correctness: any loss anywhere fails the result.
  if [ "${scenario#cluster}" != "$scenario" ]; then
    echo "  per node (last run): $(printf '%s\n' "${results[@]}" | tail -1 | grep -o '"per_node":.*' | cut -c12- | tr -d '}{]"' )"
  fi
  if [ "$scenario" != idle ] && [ "$scenario" != send-floor ] && [ "$scenario" != cold-start ]; then
    bad=$(printf '%s\n' "${results[@]}" | grep -c -E '"(lost|duplicated|reordered|closed)":[1-9]' || true)
    echo "  runs with loss, duplicates, reordering or closed subscribers: $bad"
  fi
}

for variant in "${variants[@]}"; do
  report "${by_variant[$variant]}" "$variant"
done
