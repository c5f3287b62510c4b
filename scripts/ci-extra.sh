#!/usr/bin/env bash
# The CI steps that follow `make test`: the formatting check (scripts/check-format.sh) and
# clang-tidy on the pure cores (.clang-tidy), every C++ test suite under AddressSanitizer (with
# LeakSanitizer) and UndefinedBehaviorSanitizer, the integration tests under
# ThreadSanitizer, and each fuzz target for a bounded time on a copy of its corpus. .ci/run
# runs it when CI=true; by hand:
#
#   bash scripts/ci-extra.sh                # every step
#   bash scripts/ci-extra.sh asan fuzz      # some of: deps format tidy canary asan tsan fuzz
#
# Each step builds its own tree with clang (build-asan, build-tsan, build-fuzz; only the
# targets it runs) and fails on the first problem. Any sanitizer report of any process
# fails the test that started it (tests/sanitizers/run.sh); a fuzzer's crash or broken
# property fails the fuzz step and leaves its input in build-fuzz/artifacts/<target>/.
# Settings: JOBS (2), FUZZ_SECONDS (60 per target).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

jobs="${JOBS:-2}"
fuzz_seconds="${FUZZ_SECONDS:-60}"
fuzz_targets=(decode_fuzz json_diff_fuzz ws_frame_fuzz routes_fuzz room_id_fuzz)

timings=()
run_step() {
  local name="$1"
  shift
  local start=$SECONDS
  echo "==== ci-extra: $name"
  "$@"
  timings+=("$(printf '%-8s %4d s' "$name" $((SECONDS - start)))")
}

configure() {
  local dir="$1"
  shift
  CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
}

step_deps() {
  bash scripts/install-deps.sh --ci-extra
}

# The reports we must see, seen, and no others: a sanitizer that is off, a suppression
# too wide, or hand-off hooks that hide races (tests/sanitizers/tsan_caf_handoff.cpp)
# would otherwise make every later step pass for the wrong reason.
step_canary() {
  local out="$root/build-canary"
  mkdir -p "$out"
  local flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer)
  clang++ "${flags[@]}" -fsanitize=address,undefined tests/sanitizers/canary.cpp -o "$out/asan"
  clang++ "${flags[@]}" -fsanitize=thread tests/sanitizers/canary.cpp -o "$out/tsan"
  clang++ "${flags[@]}" -fsanitize=thread tests/sanitizers/canary_caf.cpp \
    tests/sanitizers/tsan_caf_handoff.cpp -rdynamic -lcaf_core -ldl -pthread -o "$out/tsan-caf"
  local check bin mode log
  for check in asan:overflow asan:null-reference asan:heap asan:leak asan:child tsan:race \
      tsan-caf:race; do
    bin="${check%%:*}"
    mode="${check#*:}"
    log="$out/$bin-$mode.log"
    if bash tests/sanitizers/run.sh "$out/$bin" "$mode" >"$log" 2>&1 ||
        ! grep -q "==== sanitizer report" "$log"; then
      cat "$log" >&2
      echo "ci-extra: the $bin canary '$mode' was not reported" >&2
      return 1
    fi
  done
  log="$out/tsan-caf-handoff.log"
  if ! bash tests/sanitizers/run.sh "$out/tsan-caf" handoff >"$log" 2>&1; then
    cat "$log" >&2
    echo "ci-extra: TSan reported hand-offs that CAF orders (tsan_caf_handoff.cpp)" >&2
    return 1
  fi
}

# Every C++ suite (unit, integration, the multinode cluster tests with sanitized driftd
# processes); the compatibility suite is JavaScript and runs in `make test`.
step_format() {
  bash scripts/check-format.sh
}

step_tidy() {
  # The pure cores (no CAF, no Asio), against the compile commands of the main build.
  [ -f build/compile_commands.json ] ||
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  local files=(protocol/*.cpp storage/encoding.cpp cluster/placement.cpp config/settings.cpp)
  local f
  for f in "${files[@]}"; do
    clang-tidy -p build --quiet "$f"
  done
}

step_asan() {
  configure build-asan -DDRIFTD_SANITIZE=ON
  cmake --build build-asan -j "$jobs"
  (cd build-asan && ctest --output-on-failure -LE compat)
}

# The integration tests run a whole node in the test process: sessions, shards, spin
# locks and sinks called from actor and I/O threads.
step_tsan() {
  configure build-tsan -DDRIFTD_TSAN=ON
  cmake --build build-tsan -j "$jobs" --target integration_test
  (cd build-tsan && ctest --output-on-failure -R '^integration_test$')
}

# Up to $jobs fuzzers at once, each on a fresh copy of its corpus: new inputs stay out of
# the source tree; a crash input goes to build-fuzz/artifacts/<target>/.
step_fuzz() {
  configure build-fuzz -DDRIFTD_FUZZ=ON
  cmake --build build-fuzz -j "$jobs" --target fuzzers
  local work="$root/build-fuzz/runs"
  rm -rf "$work"
  local target
  local pids=() names=()
  local failed=0
  for target in "${fuzz_targets[@]}"; do
    mkdir -p "$work/$target" "$root/build-fuzz/artifacts/$target"
    cp -r "tests/fuzz/corpus/$target/." "$work/$target/"
    build-fuzz/tests/fuzz/"$target" -max_total_time="$fuzz_seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$root/build-fuzz/artifacts/$target/" \
      "$work/$target" >"$work/$target.log" 2>&1 &
    pids+=($!)
    names+=("$target")
    if [ ${#pids[@]} -ge "$jobs" ]; then
      wait_fuzzer "${pids[0]}" "${names[0]}" || failed=1
      pids=("${pids[@]:1}")
      names=("${names[@]:1}")
    fi
  done
  local i
  for i in "${!pids[@]}"; do
    wait_fuzzer "${pids[$i]}" "${names[$i]}" || failed=1
  done
  return "$failed"
}

wait_fuzzer() {
  local pid="$1" target="$2"
  local log="$root/build-fuzz/runs/$target.log"
  if wait "$pid"; then
    echo "$target: $(grep -E '^#[0-9]+.*DONE' "$log" | tail -1)"
    return 0
  fi
  tail -n 60 "$log" >&2
  echo "ci-extra: $target failed; its input is in build-fuzz/artifacts/$target/" >&2
  return 1
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(deps format tidy canary asan tsan fuzz)
for s in "${steps[@]}"; do
  case "$s" in
    deps | format | tidy | canary | asan | tsan | fuzz) run_step "$s" "step_$s" ;;
    *)
      echo "ci-extra: unknown step $s (deps canary asan tsan fuzz)" >&2
      exit 2
      ;;
  esac
done

echo "==== ci-extra: all passed"
printf '%s\n' "${timings[@]}"
