#!/bin/sh
# Compares the UDP fast path of two revisions: instructions per message (callgrind, exact and
# repeatable) for the parser and for a worker's whole per-packet path, and the median ns/message
# of BM_Worker_Process from runs interleaved on this machine.
#
# usage: bench/compare_udp_path.sh BASE_REV [HEAD_REV]   (HEAD_REV defaults to the work tree)
set -eu
base=$1
head=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

build() {  # build SRC_DIR BUILD_DIR
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DSIPEX_BUILD_TESTS=OFF >/dev/null
  cmake --build "$2" -j"$(nproc)" --target sipex_core sipex_bench >/dev/null
  c++ -O2 -std=c++20 -I"$1/include" -I"$root/bench" -I/usr/include/concurrentqueue \
    "$root/bench/udp_path_instructions.cpp" "$2/libsipex_core.a" -o "$2/udp_path_instructions" \
    $(pkg-config --libs libpcap) -lprometheus-cpp-pull -lprometheus-cpp-core -lyaml-cpp -lpthread
}

git -C "$root" worktree add --detach "$work/base" "$base" >/dev/null 2>&1
build "$work/base" "$work/base-build"
if [ -n "$head" ]; then
  git -C "$root" worktree add --detach "$work/head" "$head" >/dev/null 2>&1
  build "$work/head" "$work/head-build"
else
  build "$root" "$work/head-build"
fi

per_message() {  # per_message BINARY MODE
  out=$(valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=/dev/null "$1" "$2" 2>&1)
  ir=$(printf '%s\n' "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  n=$(printf '%s\n' "$out" | sed -n 's/.*messages=\([0-9]*\).*/\1/p')
  echo $((ir / n))
}

echo "instructions per message (callgrind)"
for mode in parse worker; do
  b=$(per_message "$work/base-build/udp_path_instructions" $mode)
  h=$(per_message "$work/head-build/udp_path_instructions" $mode)
  echo "  $mode: base $b, head $h"
done

echo "BM_Worker_Process median ns/message (5 interleaved runs each)"
for i in 1 2 3 4 5; do
  for side in base head; do
    "$work/$side-build/bench/sipex_bench" --benchmark_filter=BM_Worker_Process --benchmark_format=csv 2>/dev/null |
      awk -F, -v s=$side '/BM_Worker_Process/ {print s, $4 / 4096}'
  done
done | sort | awk '{v[$1] = v[$1] " " $2} END {for (s in v) print s, v[s]}' | while read -r side values; do
  median=$(printf '%s\n' $values | sort -n | sed -n 3p)
  echo "  $side: median $median ns (runs:$values)"
done
