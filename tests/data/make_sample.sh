#!/bin/sh
# Regenerates the demo capture tests/data/sample.pcap, the config it assumes (sample.yaml) and its
# exact expected counts (sample.truth.json) with gen_capture's sample profile and a fixed seed.
# The output is byte-identical on every run; test_generated.py checks that the committed files are.
#
# usage: tests/data/make_sample.sh BUILD_DIR [OUT_DIR]
#   BUILD_DIR  a build tree with gen_capture built (or set GEN_CAPTURE to its path)
#   OUT_DIR    where to write the three files (default: this script's directory)
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 BUILD_DIR [OUT_DIR]" >&2
  exit 2
fi
gen=${GEN_CAPTURE:-$1/tests/gen_capture}
out=${2:-$(dirname "$0")}
if [ ! -x "$gen" ]; then
  echo "$0: $gen not found; build it with: cmake --build $1 --target gen_capture" >&2
  exit 1
fi

exec "$gen" --profile sample --seed 3261 --linktype en10mb \
  --out "$out/sample.pcap" --config "$out/sample.yaml" --truth "$out/sample.truth.json"
