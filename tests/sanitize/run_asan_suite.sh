#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer (LeakSanitizer included) and
# UndefinedBehaviorSanitizer in BUILD_DIR/asan, and runs its test suite there: the unit tests, and
# the end-to-end tests driving the sanitized sip_exporter (file replays, the CLI, live captures
# on loopback and through a veth pair, reload). Any sanitizer report aborts the process, so the
# test that ran it fails.
#
#   tests/sanitize/run_asan_suite.sh SOURCE_DIR BUILD_DIR      (ctest's sanitizers.asan_suite)
#
# Left out, because they cannot mean anything under ASan:
#   e2e.package  packages and installs a Release build of its own (the ASan binary is never used)
#   e2e.flood    assert absolute bounds on the process's peak RSS, which ASan's shadow memory,
#   e2e.memory   redzones and quarantine inflate (e2e.hostile measures against a baseline run of
#                the same binary, so it stays in)
# The sanitized tree is configured with SIPEX_SANITIZER_TESTS=OFF, so it never runs the
# sanitizers.* tests themselves. Environment: CXX picks the compiler (default: c++, i.e. g++),
# ASAN_EXCLUDE (a ctest -E regex) replaces the exclusions above.
set -euo pipefail

src="$(cd "${1:?usage: run_asan_suite.sh SOURCE_DIR BUILD_DIR}" && pwd)"
build="${2:?usage: run_asan_suite.sh SOURCE_DIR BUILD_DIR}"
mkdir -p "$build"
tree="$(cd "$build" && pwd)/asan"
exclude="${ASAN_EXCLUDE:-^(sanitizers\..*|e2e\.package|e2e\.flood|e2e\.memory)\$}"

flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
echo "== configure and build $tree (${CXX:-c++}: $flags)"
start=$(date +%s)
cmake -S "$src" -B "$tree" -DCMAKE_CXX_COMPILER="${CXX:-c++}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DSIPEX_BUILD_BENCH=OFF -DSIPEX_SANITIZER_TESTS=OFF >"$tree.configure.log" 2>&1 ||
  { cat "$tree.configure.log"; exit 1; }

# Every sanitizer report is fatal, leaks included, and says where it came from. Set before the
# build: gtest_discover_tests runs the unit test binary while building.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cmake --build "$tree" -j"$(nproc)"
echo "   built in $(($(date +%s) - start)) s"

echo "== ctest in $tree (excluding $exclude)"
start=$(date +%s)
status=0
ctest --test-dir "$tree" --output-on-failure -j"$(nproc)" -E "$exclude" || status=$?
echo "   tests ran for $(($(date +%s) - start)) s"
exit "$status"
