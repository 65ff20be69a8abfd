#!/bin/sh
# The kernel translation units (exporter/sip_scan_<isa>.cpp) are compiled with -mavx2 and the
# like. Any symbol they emit as weak (an inline function or template instantiation emitted out of
# line) could be the copy the linker keeps for the whole program, and would then run AVX2 code on
# a CPU without it. This check fails if a kernel object defines a weak symbol (nm types W, V, u);
# DW.ref.__gxx_personality_v0, the exception-handling personality reference, is data, not code.
#
#   check_kernel_objects.sh OBJECT...        (ctest's build.kernel_objects)
set -eu
[ $# -gt 0 ] || { echo "usage: $0 OBJECT..." >&2; exit 2; }
status=0
for o in "$@"; do
  weak=$(nm -C "$o" | awk '$(NF-1) ~ /^[WVu]$/' | grep -v 'DW.ref.__gxx_personality_v0' || true)
  if [ -n "$weak" ]; then
    echo "$o defines weak symbols, which the linker may pick for code built without its instruction set:"
    echo "$weak"
    status=1
  fi
done
[ $status -eq 0 ] && echo "no weak symbols in $# kernel objects"
exit $status
