#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan in BUILD_DIR/fuzz, assembles their seed
# corpora, runs each target for SECONDS, then runs each once over its kept regression inputs.
# Fails on any crash, sanitizer report, leak or timeout.
#
#   tests/fuzz/run_fuzzers.sh BUILD_DIR [SECONDS]       (ctest's sanitizers.fuzz: SECONDS=60)
#
# Seeds (rebuilt every run, under BUILD_DIR/fuzz/seeds, nothing copied into the repository):
#   fuzz_sip_parse   ../shared/torture/*/*.dat, and the SIP payloads of ../shared/corpus captures
#   fuzz_decode      the frames of ../shared/corpus/*.pcap*, each prefixed by its link selector
#   fuzz_reassembly  runs of consecutive frames of those captures, and generated TCP/IP
#                    fragment/SCTP records (tests/fuzz/extract_seeds.cpp)
# plus tests/fuzz/regressions/TARGET/. What a run adds to the corpus stays in
# BUILD_DIR/fuzz/corpus/TARGET for the next run; findings go to BUILD_DIR/fuzz/artifacts/.
# Environment: FUZZ_JOBS (targets run at once; default: the CPU count), FUZZ_TARGETS (a subset).
# Exit 77 (skip) when clang or libFuzzer is missing, unless CI is set.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
build="${1:?usage: run_fuzzers.sh BUILD_DIR [SECONDS]}"
seconds="${2:-60}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"
tree="$build/fuzz"
shared="$src/../shared"
targets=(${FUZZ_TARGETS:-fuzz_sip_parse fuzz_decode fuzz_reassembly})
jobs="${FUZZ_JOBS:-$(nproc)}"

skip() {
  echo "run_fuzzers: $*" >&2
  if [ -n "${CI:-}" ]; then exit 1; fi
  exit 77
}

cxx="$(command -v clang++ || true)"
[ -n "$cxx" ] || skip "clang++ not found (Debian: clang, libclang-rt-14-dev)"
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
    "$cxx" -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
  skip "$cxx cannot link libFuzzer with ASan/UBSan (Debian: libclang-rt-14-dev)"
fi

echo "== configure and build $tree ($cxx)"
start=$(date +%s)
cmake -S "$src" -B "$tree" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSIPEX_FUZZ=ON -DSIPEX_BUILD_BENCH=OFF -DSIPEX_SANITIZER_TESTS=OFF >"$build/fuzz-configure.log" 2>&1 ||
  { cat "$build/fuzz-configure.log"; exit 1; }
cmake --build "$tree" -j"$(nproc)" --target sipex_fuzzers
echo "   built in $(($(date +%s) - start)) s"
bin="$tree/tests/fuzz"

echo "== seeds"
seeds="$tree/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
captures=()
if [ -d "$shared/corpus" ]; then
  for f in "$shared"/corpus/*.pcap*; do [ -f "$f" ] && captures+=("$f"); done
else
  [ -z "${CI:-}" ] || { echo "run_fuzzers: $shared/corpus is missing" >&2; exit 1; }
  echo "   $shared/corpus is missing: capture seeds left out" >&2
fi
"$bin/fuzz_extract_seeds" "$seeds" "${captures[@]}"
if [ -d "$shared/torture" ]; then
  for f in "$shared"/torture/*/*.dat; do
    cp "$f" "$seeds/fuzz_sip_parse/torture-$(basename "$(dirname "$f")")-$(basename "$f")"
  done
else
  [ -z "${CI:-}" ] || { echo "run_fuzzers: $shared/torture is missing" >&2; exit 1; }
fi
for t in "${targets[@]}"; do echo "   $t: $(find "$seeds/$t" -type f | wc -l) seeds"; done

# Longest input each target is given.
max_len() {
  case "$1" in
    fuzz_sip_parse) echo 16384 ;;
    fuzz_decode) echo 16384 ;;
    *) echo 32768 ;;
  esac
}

# Kept regression inputs of a target (README files aside).
regressions() {
  local d="$here/regressions/$1"
  [ -d "$d" ] || return 0
  find "$d" -maxdepth 1 -type f ! -name 'README*' | sort
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

run_one() {
  local t="$1" corpus="$tree/corpus/$1" art="$tree/artifacts/$1/" log="$tree/logs/$1.log"
  rm -rf "$art"
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  local dirs=("$corpus" "$seeds/$t")
  [ -d "$here/regressions/$t" ] && dirs+=("$here/regressions/$t")
  "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -print_final_stats=1 -artifact_prefix="$art" "${dirs[@]}" >"$log" 2>&1
}

echo "== fuzz ${targets[*]} for $seconds s each, $jobs at a time"
declare -A pid status
failed=0
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run_one "$t" &
  pid[$t]=$!
done
for t in "${targets[@]}"; do
  if wait "${pid[$t]}"; then status[$t]=0; else status[$t]=$?; fi
done
for t in "${targets[@]}"; do
  log="$tree/logs/$t.log"
  stats="$(grep -E '^#[0-9]+ +DONE' "$log" | tail -1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  if [ "${status[$t]}" -eq 0 ]; then
    echo "   $t: ok, ${execs:-?} executions; ${stats:-}"
  else
    failed=1
    echo "   $t: FAILED (exit ${status[$t]}); log $log; the last lines:"
    tail -n 60 "$log" | sed 's/^/     /'
    for a in "$tree/artifacts/$t"/*; do
      [ -f "$a" ] || continue
      echo "     input $a ($(stat -c %s "$a") bytes); reproduce: $bin/$t $a"
    done
  fi
done

echo "== regression inputs"
for t in "${targets[@]}"; do
  mapfile -t files < <(regressions "$t")
  if [ "${#files[@]}" -eq 0 ]; then
    echo "   $t: none"
    continue
  fi
  log="$tree/logs/$t.regressions.log"
  if "$bin/$t" -timeout=10 -rss_limit_mb=2048 "${files[@]}" >"$log" 2>&1; then
    echo "   $t: ${#files[@]} inputs, ok"
  else
    failed=1
    echo "   $t: FAILED on a kept input; log $log:"
    grep -E 'Running:|ERROR|runtime error|invariant|SUMMARY|differs' "$log" | tail -n 20 | sed 's/^/     /'
  fi
done

[ "$failed" -eq 0 ] || { echo "run_fuzzers: findings (see above)"; exit 1; }
echo "run_fuzzers: no findings"
